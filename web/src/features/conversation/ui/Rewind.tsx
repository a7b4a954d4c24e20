// Going back from the conversation: "Restore to here" on a turn (its checkpoint, as the
// checkpoint timeline restores it) and Edit of a prompt (the checkpoint of the turn before
// it, then the edited prompt as a new turn). Both ask first, in one dialog.
import { useQueryClient } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { checkpointsQuery, useRestoreCheckpoint } from "@/features/checkpoints/api/checkpoints";
import { failureText } from "@/features/checkpoints/model/timeline";
import { useSendMessage } from "../api/conversation";
import type { MessageView } from "../model/conversation";
import { checkpointBeforePrompt, checkpointOfTurn } from "../model/rewind";

export type RewindRequest = { action: "restore"; turn: MessageView; number: number } | { action: "edit"; prompt: MessageView; text: string };

export interface Rewind {
  ask: (request: RewindRequest) => void;
  error: string | null;
  dialog: ReactNode;
}

/** The dialog and the flow behind it; `ask` opens the dialog for one turn or prompt. */
export function useRewind(chatId: string, messages: readonly MessageView[]): Rewind {
  const queryClient = useQueryClient();
  const restore = useRestoreCheckpoint(chatId);
  const send = useSendMessage(chatId);
  const [pending, setPending] = useState<RewindRequest | null>(null);
  const [error, setError] = useState<string | null>(null);
  const busy = restore.isPending || send.isPending;

  const confirm = async () => {
    if (!pending) return;
    setError(null);
    try {
      // The list now, not a cached one: the latest turn's checkpoint is only minutes old.
      const checkpoints = await queryClient.fetchQuery({ ...checkpointsQuery(chatId), staleTime: 0 });
      const target = pending.action === "restore" ? checkpointOfTurn(checkpoints, pending.turn.id) : checkpointBeforePrompt(checkpoints, messages, pending.prompt.id);
      if (!target) {
        setError(pending.action === "restore" ? "This turn has no checkpoint (retention may have removed it)." : "The turn before this prompt has no checkpoint (retention may have removed it).");
        return;
      }
      await restore.mutateAsync(target.id);
      if (pending.action === "edit") {
        await send.mutateAsync({ prompt: pending.text });
      }
    } catch (failure) {
      setError(failureText(failure, "restore"));
    } finally {
      setPending(null);
    }
  };

  const dialog = (
    <ConfirmDialog
      open={pending !== null}
      title={pending?.action === "edit" ? "Edit this prompt and run it again?" : "Restore to here?"}
      confirmLabel={busy ? (restore.isPending ? "Restoring…" : "Sending…") : pending?.action === "edit" ? "Restore and send" : "Restore"}
      danger
      busy={busy}
      onConfirm={() => void confirm()}
      onCancel={() => setPending(null)}
    >
      {pending?.action === "edit" ? (
        <p>
          The files and the conversation go back to where they were before this prompt (the checkpoint of the turn before it), and the edited prompt is
          sent as a new turn. Later turns are kept aside; the checkpoint timeline’s undo point brings them back.
        </p>
      ) : pending ? (
        <p>
          The files and the conversation go back to the end of turn {pending.number}. Later turns are kept aside; the checkpoint timeline’s undo point
          brings them back. Terminals in the sandbox are closed.
        </p>
      ) : null}
    </ConfirmDialog>
  );
  return { ask: (request) => (setError(null), setPending(request)), error, dialog };
}
