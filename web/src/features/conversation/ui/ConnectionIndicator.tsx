import { useConnectionState, type ConnectionState } from "../model/connection";

const labels: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/** Whether the open chat receives events live; it says so when it does not. */
export function ConnectionIndicator() {
  const state = useConnectionState();
  return (
    <span className={`connection connection-${state}`} role="status" aria-live="polite" data-state={state}>
      <span className="connection-dot" aria-hidden /> {labels[state]}
    </span>
  );
}
