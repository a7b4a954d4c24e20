// One line about the chat's sandbox: running, paused or stopped; isolated or not; the
// button to pause or resume it; and Restart, for a sandbox that its processes made unusable
// (asked first: it stops everything that runs there, files are kept).
import { useState } from "react";
import { ApiError } from "@/shared/api/client";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { useSandbox, useSandboxAction } from "../api/sandbox";

const statusText: Record<string, string> = {
  running: "Running",
  paused: "Paused",
  stopped: "Stopped (starts when used)",
};

export function SandboxStatus({ chatId }: { chatId: string }) {
  const sandbox = useSandbox(chatId);
  const action = useSandboxAction(chatId);
  const [confirmRestart, setConfirmRestart] = useState(false);
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
    <>
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
        <button type="button" className="link" disabled={action.isPending} onClick={() => setConfirmRestart(true)}>
          Restart
        </button>
        {error && <span className="bad">{error}</span>}
      </div>
      <ConfirmDialog
        open={confirmRestart}
        title="Restart the sandbox?"
        confirmLabel={action.isPending && action.variables === "restart" ? "Restarting…" : "Restart"}
        danger
        busy={action.isPending}
        onConfirm={() => action.mutate("restart", { onSettled: () => setConfirmRestart(false) })}
        onCancel={() => setConfirmRestart(false)}
      >
        <p>
          This stops everything that runs in the sandbox: commands, servers, terminals, and the agent&apos;s turn if one is running. The files are kept, and the conversation goes on
          with the next message.
        </p>
      </ConfirmDialog>
    </>
  );
}
