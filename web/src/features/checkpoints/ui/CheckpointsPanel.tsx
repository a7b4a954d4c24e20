// The chat's checkpoint timeline, newest first: each entry names its turn (by the prompt that
// started it), says what changed and offers Restore (the workspace and the conversation go back
// to it; a "before restore" checkpoint is kept as the undo point) and Fork (a new chat starts
// from it). Both ask first. The list refreshes when a turn ends, after a restore and when the
// panel is shown again.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { RefreshIcon } from "@/shared/ui/icons";
import { Button } from "@/shared/ui/Button";
import { chatPath, navigate } from "@/shared/lib/router";
import { useChat } from "@/features/chats/api/chats";
import { conversationQuery } from "@/features/conversation/api/conversation";
import { checkpointKeys, checkpointsQuery, useForkChat, useRestoreCheckpoint } from "../api/checkpoints";
import { entryName, failureText, formatCheckpointTime, timeline, type EntryView } from "../model/timeline";
import "./checkpoints.css";

type Pending = { action: "restore" | "fork"; entry: EntryView };
type Notice = { kind: "info" | "error"; text: string };

/**
 * Refetches the timeline when the chat's `last_event_id` changes. The chat's stream refetches
 * the chat when a turn starts and when it completes, and a turn's checkpoint is recorded
 * before its `message_completed` event, so a changed id after a turn means a new checkpoint.
 * This costs one request per turn, where polling would cost requests while nothing happens.
 */
function useRefetchAfterTurns(chatId: string, lastEventId: number | undefined): void {
  const queryClient = useQueryClient();
  const seen = useRef(lastEventId);
  useEffect(() => {
    if (lastEventId === undefined) return;
    if (seen.current !== undefined && seen.current !== lastEventId) {
      void queryClient.invalidateQueries({ queryKey: checkpointKeys.list(chatId) });
    }
    seen.current = lastEventId;
  }, [chatId, lastEventId, queryClient]);
}

function Entry({ entry, busy, onAction }: { entry: EntryView; busy: boolean; onAction: (action: Pending["action"]) => void }) {
  const titleId = useId();
  const when = formatCheckpointTime(entry.createdAt);
  return (
    <li className={`checkpoint checkpoint-${entry.kind}`} aria-labelledby={titleId} data-checkpoint-id={entry.id}>
      <div className="checkpoint-head">
        <span className="checkpoint-title" id={titleId}>
          {entry.title}
          {entry.prompt && <span className="sr-only">: {entry.prompt}</span>}
        </span>
        <time className="checkpoint-time muted small" dateTime={entry.createdAt} title={when.full}>
          {when.short}
        </time>
      </div>
      {entry.prompt && (
        <p className="checkpoint-prompt" title={entry.fullPrompt ?? undefined} aria-hidden="true">
          “{entry.prompt}”
        </p>
      )}
      <p className="checkpoint-stats muted small">
        <span className="checkpoint-changes" title={`Since the checkpoint before: ${entry.changesLabel}; ${entry.added} of new storage (unchanged files are shared with other checkpoints)`}>
          {entry.changes}
        </span>
        <span title="The whole workspace at this point">{entry.total}</span>
      </p>
      <div className="checkpoint-actions">
        <Button onClick={() => onAction("restore")} disabled={busy} aria-describedby={titleId}>
          Restore
        </Button>
        {entry.canFork && (
          <Button onClick={() => onAction("fork")} disabled={busy} aria-describedby={titleId}>
            Fork
          </Button>
        )}
      </div>
    </li>
  );
}

function ConfirmText({ pending }: { pending: Pending }) {
  const name = entryName(pending.entry);
  if (pending.action === "fork") {
    return (
      <>
        <p>
          A new chat starts from {name}: it gets a copy of the workspace as it was after that turn and a copy of the conversation up to
          it, in a sandbox of its own.
        </p>
        <p>This chat stays as it is. You are taken to the new chat.</p>
      </>
    );
  }
  return (
    <>
      <p>
        The workspace becomes exactly what it was at {name}: files created since then are removed and changed files are put back. The
        conversation goes back to that point too: later messages are hidden (kept, not deleted).
      </p>
      <p>
        A checkpoint of the present is taken first and listed as “Before restore (undo point)”: restoring it undoes this. Terminals in
        the sandbox are closed.
      </p>
    </>
  );
}

export function CheckpointsPanel({ chatId, visible }: { chatId: string; visible: boolean }) {
  const queryClient = useQueryClient();
  const chat = useChat(chatId);
  const conversation = useQuery(conversationQuery(queryClient, chatId));
  const list = useQuery({ ...checkpointsQuery(chatId), enabled: visible });
  const restore = useRestoreCheckpoint(chatId);
  const fork = useForkChat(chatId);
  const [pending, setPending] = useState<Pending | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  useRefetchAfterTurns(chatId, chat.data?.last_event_id);

  const entries = useMemo(() => timeline(list.data ?? [], conversation.data), [list.data, conversation.data]);
  const busy = restore.isPending || fork.isPending;
  const running = chat.data?.status === "running";

  const confirm = () => {
    if (!pending) return;
    const { action, entry } = pending;
    setNotice(null);
    if (action === "restore") {
      restore.mutate(entry.id, {
        onSuccess: (restored) =>
          setNotice({
            kind: "info",
            text: restored.undo_unavailable
              ? `Restored ${entryName(entry)}. There is no undo point: ${restored.undo_unavailable}.`
              : `Restored ${entryName(entry)}. The state before it is kept as “Before restore (undo point)”.`,
          }),
        onError: (error) => setNotice({ kind: "error", text: failureText(error, "restore") }),
        onSettled: () => setPending(null),
      });
    } else if (entry.messageId) {
      fork.mutate(
        { message_id: entry.messageId },
        {
          onSuccess: (created) => navigate(chatPath(created.id)),
          onError: (error) => setNotice({ kind: "error", text: failureText(error, "fork") }),
          onSettled: () => setPending(null),
        },
      );
    }
  };

  return (
    <div className="checkpoints-panel" hidden={!visible}>
      <div className="checkpoints-toolbar">
        <p className="muted small">Restore puts the files and the conversation back to a checkpoint; Fork starts a new chat from one.</p>
        <button
          type="button"
          className="icon-btn"
          aria-label="Refresh the checkpoints"
          title="Refresh"
          onClick={() => void queryClient.invalidateQueries({ queryKey: checkpointKeys.list(chatId) })}
        >
          <RefreshIcon />
        </button>
      </div>
      {running && (
        <p className="checkpoints-notice" role="status">
          A turn is running: its checkpoint appears when it ends. Restoring is refused until then; forking a finished turn works.
        </p>
      )}
      {(notice || busy) && (
        <p className={`checkpoints-notice ${notice?.kind === "error" ? "bad" : ""}`} role={notice?.kind === "error" ? "alert" : "status"}>
          {busy ? (restore.isPending ? "Restoring…" : "Forking…") : notice?.text}
          {notice && !busy && (
            <button type="button" className="link" onClick={() => setNotice(null)}>
              Dismiss
            </button>
          )}
        </p>
      )}
      <div className="checkpoints-scroll">
        {list.isPending ? (
          <p className="panel-empty">{visible ? "Loading the checkpoints…" : null}</p>
        ) : list.isError ? (
          <div className="panel-empty">
            <p className="bad" role="alert">
              {failureText(list.error, "load")}
            </p>
            <Button onClick={() => void list.refetch()}>Try again</Button>
          </div>
        ) : entries.length === 0 ? (
          <div className="panel-empty">
            <p>
              <strong>No checkpoints yet.</strong>
            </p>
            <p>A checkpoint of the workspace is taken after each turn; they appear here, newest first, ready to restore or fork.</p>
          </div>
        ) : (
          <ol className="checkpoint-list" aria-label="Checkpoints, newest first">
            {entries.map((entry) => (
              <Entry key={entry.id} entry={entry} busy={busy} onAction={(action) => setPending({ action, entry })} />
            ))}
          </ol>
        )}
      </div>
      <ConfirmDialog
        open={pending !== null}
        title={pending?.action === "fork" ? "Fork a new chat from here?" : "Restore this checkpoint?"}
        confirmLabel={pending?.action === "fork" ? (fork.isPending ? "Forking…" : "Fork") : restore.isPending ? "Restoring…" : "Restore"}
        danger={pending?.action === "restore"}
        busy={busy}
        onConfirm={confirm}
        onCancel={() => setPending(null)}
      >
        {pending && <ConfirmText pending={pending} />}
      </ConfirmDialog>
    </div>
  );
}
