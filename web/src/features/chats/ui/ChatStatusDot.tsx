import type { ChatStatus } from "@/shared/api/types";

const labels: Record<ChatStatus, string> = { running: "Running", idle: "Idle" };

/** A chat's status at a glance; the label is there for screen readers and on hover. */
export function ChatStatusDot({ status }: { status: ChatStatus }) {
  return <span className={`status-dot status-${status}`} role="img" aria-label={labels[status]} title={labels[status]} />;
}
