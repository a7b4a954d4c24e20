//! The durable turn queue's summary that `/health` reports: its depth, the jobs a worker
//! holds, and the oldest job's queueing instant, as one aggregate on both backends.

use agentbox_protocol::api::PermissionMode;
use agentbox_store::TurnQueueSummary;
use chrono::{DateTime, TimeDelta, Utc};

use super::support::{TestStore, conformance};

conformance!(the_queue_summary_counts_waiting_and_claimed_jobs);

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

async fn the_queue_summary_counts_waiting_and_claimed_jobs(t: TestStore) {
    let store = &t.store;
    assert_eq!(store.turn_queue_summary().await.unwrap(), TurnQueueSummary::default());

    let (user, chat1) = t.user_and_chat().await;
    let chat2 = t.chat_of(user).await;
    let before = Utc::now() - TimeDelta::seconds(1);
    let mut messages = Vec::new();
    for (chat, prompt) in [(chat1, "first"), (chat2, "second")] {
        let turn = store.begin_turn(chat, prompt, "m", PermissionMode::Ask).await.unwrap();
        store.push_turn_job(chat, turn.message_id, prompt, "m", PermissionMode::Ask).await.unwrap();
        messages.push(turn.message_id);
    }
    let after = Utc::now() + TimeDelta::seconds(1);
    let summary = store.turn_queue_summary().await.unwrap();
    assert_eq!((summary.jobs, summary.claimed), (2, 0));
    let jobs = store.turn_jobs().await.unwrap();
    assert_eq!(summary.oldest_queued_at, Some(jobs[0].created_at), "the oldest job's instant");
    let oldest = summary.oldest_queued_at.unwrap();
    assert!(before <= oldest && oldest <= after, "{oldest} is not when the job was queued");

    // A claim holds a job without removing it; a start removes it.
    let job = store.claim_turn_job("w", t0(), t0() + TimeDelta::seconds(30), t0()).await.unwrap();
    let job = job.unwrap();
    let summary = store.turn_queue_summary().await.unwrap();
    assert_eq!((summary.jobs, summary.claimed), (2, 1));
    assert!(store.start_turn_job(job.message_id, "w", t0()).await.unwrap());
    let summary = store.turn_queue_summary().await.unwrap();
    assert_eq!((summary.jobs, summary.claimed), (1, 0));
    let left = store.turn_jobs().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0].message_id, job.message_id);
    assert_eq!(summary.oldest_queued_at, Some(left[0].created_at));
}
