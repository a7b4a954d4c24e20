//! Honest numbers: each message's cost and usage are its own turn's, also when the chat's
//! CLI process is kept between turns (its `result` reports the session's running cost), and
//! the chat's and the user's totals add them up.

use serde_json::Value;

use super::support::TestServer;

fn cost(message: &Value) -> f64 {
    message["total_cost_usd"].as_f64().unwrap()
}

#[tokio::test]
async fn three_turns_in_a_kept_process_each_report_their_own_cost() {
    let server = TestServer::start_with(|config| {
        // One CLI process for all three turns.
        config.idle_session = std::time::Duration::from_secs(600);
    })
    .await;
    let api = server.user("costs@example.com").await;
    let chat = api.new_chat().await;
    for prompt in ["[[text:one]] first", "[[text:two]] second", "[[text:three]] third"] {
        let message = api.send(&chat, prompt).await;
        let events = api.turn_events(&chat, &message).await;
        assert_eq!(events.last().unwrap().data["status"], "completed");
    }
    let messages = api.messages(&chat).await;
    let turns: Vec<&Value> = messages.iter().filter(|m| m["role"] == "assistant").collect();
    assert_eq!(turns.len(), 3);
    let costs: Vec<f64> = turns.iter().map(|m| cost(m)).collect();
    // Each turn's cost is what its own tokens cost at the model's list price (Sonnet 4.5:
    // $3 per million input tokens, $15 output, $3.75 cache writes, $0.30 cache reads); the
    // CLI's running total would read about 1x, 2x, 3x the first turn instead.
    for (turn, cost) in turns.iter().zip(&costs) {
        let tokens = |key: &str| turn["usage"][key].as_f64().unwrap();
        let priced = (tokens("input_tokens") * 3.0
            + tokens("output_tokens") * 15.0
            + tokens("cache_creation_input_tokens") * 3.75
            + tokens("cache_read_input_tokens") * 0.3)
            / 1e6;
        assert!((cost - priced).abs() < 1e-6, "turn cost {cost} against its tokens {priced}");
    }
    assert!(costs[2] < costs[0] * 1.5, "each turn's own cost: {costs:?}");
    for turn in &turns {
        // The message, its usage and its usage event say the same.
        assert_eq!(turn["usage"]["total_cost_usd"], turn["total_cost_usd"]);
        let event = turn["content"].as_array().unwrap().iter().find(|e| e["type"] == "usage");
        assert_eq!(event.unwrap()["total_cost_usd"], turn["total_cost_usd"]);
        // The context meter's figures: the last call's tokens, against the model's window.
        let context = turn["usage"]["context_tokens"].as_u64().unwrap();
        assert!(context > 0 && context <= turn["usage"]["context_window"].as_u64().unwrap());
        assert_eq!(turn["usage"]["context_window"], 200_000);
    }

    // Beside them, the chat's total and the user's total for today.
    let (status, totals) = api.get(&format!("/api/v1/chats/{chat}/costs")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{totals}");
    let sum: f64 = costs.iter().sum();
    assert!((totals["chat_total_usd"].as_f64().unwrap() - sum).abs() < 1e-9, "{totals}");
    assert!((totals["user_total_usd"].as_f64().unwrap() - sum).abs() < 1e-9, "{totals}");
    let (_, later) =
        api.get(&format!("/api/v1/chats/{chat}/costs?since=2999-01-01T00:00:00Z")).await;
    assert_eq!(later["user_total_usd"], 0.0);
    assert!((later["chat_total_usd"].as_f64().unwrap() - sum).abs() < 1e-9);
    let (status, body) = api.get(&format!("/api/v1/chats/{chat}/costs?since=yesterday")).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (400, Some("invalid_query")));
    let stranger = server.user("costs-stranger@example.com").await;
    let (status, _) = stranger.get(&format!("/api/v1/chats/{chat}/costs")).await;
    assert_eq!(status.as_u16(), 404);
}
