// One line about the chat's sandbox: running, paused or stopped; isolated or not; and the
// button to pause or resume it.
import { ApiError } from "@/shared/api/client";
import { useSandbox, useSandboxAction } from "../api/sandbox";

const statusText: Record<string, string> = {
  running: "Running",
  paused: "Paused",
  stopped: "Stopped (starts when used)",
};

export function SandboxStatus({ chatId }: { chatId: string }) {
  const sandbox = useSandbox(chatId);
  const action = useSandboxAction(chatId);
  const info = sandbox.data;
  if (!info) {
    return (
      <div className="sandbox-status muted small" aria-live="polite">
        {sandbox.isError ? "The sandbox's status is not available." : "Sandbox…"}
      </div>
    );
  }
  const error = action.error instanceof ApiError ? action.error.message : null;
  return (
    <div className={`sandbox-status small sandbox-${info.status}`} aria-live="polite" data-status={info.status}>
      <span className="status-dot" aria-hidden />
      <span>
        Sandbox: <strong>{statusText[info.status] ?? info.status}</strong>
      </span>
      <span className={info.isolated ? "muted" : "sandbox-unisolated"} title={info.isolated ? "The agent is confined to this chat's sandbox." : "The agent runs unconfined, as the server's user."}>
        {info.isolated ? `isolated (${info.provider})` : `not isolated (${info.provider})`}
      </span>
      {info.status === "running" && (
        <button type="button" className="link" disabled={action.isPending} onClick={() => action.mutate("pause")}>
          Pause
        </button>
      )}
      {info.status === "paused" && (
        <button type="button" className="link" disabled={action.isPending} onClick={() => action.mutate("resume")}>
          Resume
        </button>
      )}
      {error && <span className="bad">{error}</span>}
    </div>
  );
}
