//! A turn's own cost and how full the model's context is, from what the CLI reports.
//!
//! The CLI's `result` carries `total_cost_usd` for the whole session (it keeps adding up
//! across the turns of a kept process, and across a resume), but `usage` for the turn alone.
//! Its `model_usage_since_last_result` has the turn's own cost per model; when it is absent
//! (an older CLI), the turn's cost is the difference from the previous `result` of the same
//! process. The context meter reads the last model call's usage: the result's `usage` adds
//! up every call of the turn, which counts the same context once per call.

use agentbox_protocol::cli::ResultMessage;
use serde_json::{Map, Value};

/// The turn's own cost: the sum over models of what was used since the last result, else
/// the session's total minus `previous_total` (the total the process reported last turn).
pub fn turn_cost(result: &ResultMessage, previous_total: Option<f64>) -> Option<f64> {
    if let Some(since) = &result.model_usage_since_last_result {
        return Some(sum(since, "costUSD"));
    }
    let total = result.total_cost_usd?;
    Some(match previous_total {
        // A smaller total is a new count, not a refund.
        Some(previous) if previous <= total => total - previous,
        _ => total,
    })
}

fn sum(models: &Map<String, Value>, key: &str) -> f64 {
    models.values().filter_map(|figures| figures.get(key)).filter_map(Value::as_f64).sum()
}

/// The context window of the turn's model (the largest one reported, when the turn used
/// more than one model, as a sub-agent may).
pub fn context_window(result: &ResultMessage) -> Option<u64> {
    let models =
        result.model_usage_since_last_result.as_deref().or(result.model_usage.as_deref())?;
    models.values().filter_map(|figures| figures.get("contextWindow")?.as_u64()).max()
}

/// Tokens in context after a model call: its input, cached or not, and its output.
pub fn context_tokens(usage: &Value) -> Option<u64> {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or_default();
    let tokens = count("input_tokens")
        + count("cache_read_input_tokens")
        + count("cache_creation_input_tokens")
        + count("output_tokens");
    (tokens > 0).then_some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value) -> ResultMessage {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_turns_own_cost_comes_from_the_figures_since_the_last_result() {
        // The third turn of a session, as CLI 2.1.332 reports it.
        let third = result(json!({
            "type": "result", "total_cost_usd": 0.00063,
            "modelUsage": {"claude-sonnet-4-5": {"costUSD": 0.00063, "contextWindow": 200000}},
            "model_usage_since_last_result": {
                "claude-sonnet-4-5": {"costUSD": 0.00021, "contextWindow": 200000},
                "claude-haiku-4-5": {"costUSD": 0.00001, "contextWindow": 100000}
            }
        }));
        let cost = turn_cost(&third, Some(0.00042)).unwrap();
        assert!((cost - 0.00022).abs() < 1e-12, "{cost}");
        assert_eq!(context_window(&third), Some(200_000));
    }

    #[test]
    fn without_them_the_cost_is_the_difference_from_the_previous_total() {
        let second = result(json!({"type": "result", "total_cost_usd": 0.28}));
        assert!((turn_cost(&second, Some(0.14)).unwrap() - 0.14).abs() < 1e-12);
        assert_eq!(turn_cost(&second, None), Some(0.28));
        // A total below the previous one started a new count.
        assert_eq!(turn_cost(&second, Some(0.5)), Some(0.28));
        assert_eq!(turn_cost(&result(json!({"type": "result"})), Some(0.1)), None);
        assert_eq!(context_window(&second), None);
    }

    #[test]
    fn the_context_is_the_last_calls_input_and_output() {
        let usage = json!({"input_tokens": 10, "cache_read_input_tokens": 22000,
                           "cache_creation_input_tokens": 900, "output_tokens": 12});
        assert_eq!(context_tokens(&usage), Some(22_922));
        assert_eq!(context_tokens(&json!({})), None);
    }
}
