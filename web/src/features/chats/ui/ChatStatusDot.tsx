import type { ChatState } from "../model/attention";

const labels: Record<ChatState, string> = { running: "Running", waiting: "Waiting for you", news: "A scheduled run ended", paused: "Sandbox paused", idle: "Idle" };

/** A chat's state at a glance; the label is there for screen readers and on hover. */
export function ChatStatusDot({ state }: { state: ChatState }) {
  return <span className={`status-dot status-${state}`} role="img" aria-label={labels[state]} title={labels[state]} />;
}
