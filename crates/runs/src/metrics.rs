//! The runner's Prometheus metrics, through the `metrics` facade: the names live here, the
//! server only renders them (ARCHITECTURE.md, "Metrics and shutdown").

use std::time::Duration;

use agentbox_protocol::event::MessageStatus;

pub(crate) fn turn_started() {
    metrics::counter!("agentbox_turns_started_total").increment(1);
}

pub(crate) fn turn_finished(status: MessageStatus, took: Duration) {
    metrics::counter!("agentbox_turns_finished_total", "status" => status.as_str()).increment(1);
    metrics::histogram!("agentbox_turn_duration_seconds").record(took.as_secs_f64());
}

/// From the turn's task starting to the first event the agent produced.
pub(crate) fn first_event(after: Duration) {
    metrics::histogram!("agentbox_turn_first_event_seconds").record(after.as_secs_f64());
}

pub(crate) fn checkpoint_taken(took: Duration, new_bytes: u64) {
    metrics::histogram!("agentbox_checkpoint_duration_seconds").record(took.as_secs_f64());
    metrics::histogram!("agentbox_checkpoint_bytes").record(new_bytes as f64);
}

/// A kept CLI process ended to stay within `--max-kept-cli`.
pub(crate) fn kept_cli_evicted() {
    metrics::counter!("agentbox_kept_cli_evicted_total").increment(1);
}

/// A turn waiting for a free slot, for as long as this value lives.
pub(crate) struct WaitingForSlot;

impl WaitingForSlot {
    pub fn new() -> Self {
        metrics::gauge!("agentbox_turns_waiting_for_slot").increment(1.0);
        Self
    }
}

impl Drop for WaitingForSlot {
    fn drop(&mut self) {
        metrics::gauge!("agentbox_turns_waiting_for_slot").decrement(1.0);
    }
}

/// The node's state read at a scrape: what is running, kept and waiting now.
pub(crate) struct Gauges {
    pub running_turns: usize,
    pub kept_cli_processes: usize,
    pub permission_requests_waiting: usize,
    pub sandboxes: Vec<(&'static str, usize)>,
}

impl Gauges {
    pub fn set(&self) {
        metrics::gauge!("agentbox_turns_running").set(self.running_turns as f64);
        metrics::gauge!("agentbox_kept_cli_processes").set(self.kept_cli_processes as f64);
        metrics::gauge!("agentbox_permission_requests_waiting")
            .set(self.permission_requests_waiting as f64);
        for (state, count) in &self.sandboxes {
            metrics::gauge!("agentbox_sandboxes", "state" => *state).set(*count as f64);
        }
    }
}
