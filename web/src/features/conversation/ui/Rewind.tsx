// Going back from the conversation: "Restore to here" on a turn (its checkpoint, as the
// checkpoint timeline restores it) and Edit of a prompt (the checkpoint of the turn before
// it, then the edited prompt as a new turn). Both ask first, in this dialog, which is a chunk
// of its own (with the checkpoint API) loaded when first asked for.
import { useQueryClient } from "@tanstack/react-query";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { checkpointsQuery, useRestoreCheckpoint } from "@/features/checkpoints/api/checkpoints";
import { failureText } from "@/features/checkpoints/model/timeline";
import { useSendMessage } from "../api/conversation";
import type { MessageView } from "../model/conversation";
import { checkpointBeforePrompt, checkpointOfTurn, type RewindRequest } from "../model/rewind";

interface RewindDialogProps {
  chatId: string;
  messages: readonly MessageView[];
  /** What the user asked for; null: the dialog is closed. */
  request: RewindRequest | null;
  /** The dialog closed: done, cancelled (`error` null) or failed. */
  onClose: (error: string | null) => void;
}

export function RewindDialog({ chatId, messages, request, onClose }: RewindDialogProps) {
  const queryClient = useQueryClient();
  const restore = useRestoreCheckpoint(chatId);
  const send = useSendMessage(chatId);
  const busy = restore.isPending || send.isPending;

  const confirm = async () => {
    if (!request) return;
    try {
      // The list now, not a cached one: the latest turn's checkpoint is only minutes old.
      const checkpoints = await queryClient.fetchQuery({ ...checkpointsQuery(chatId), staleTime: 0 });
      const target = request.action === "restore" ? checkpointOfTurn(checkpoints, request.turn.id) : checkpointBeforePrompt(checkpoints, messages, request.prompt.id);
      if (!target) {
        onClose(request.action === "restore" ? "This turn has no checkpoint (retention may have removed it)." : "The turn before this prompt has no checkpoint (retention may have removed it).");
        return;
      }
      await restore.mutateAsync(target.id);
      if (request.action === "edit") await send.mutateAsync({ prompt: request.text });
      onClose(null);
    } catch (failure) {
      onClose(failureText(failure, "restore"));
    }
  };

  return (
    <ConfirmDialog
      open={request !== null}
      title={request?.action === "edit" ? "Edit this prompt and run it again?" : "Restore to here?"}
      confirmLabel={busy ? (restore.isPending ? "Restoring…" : "Sending…") : request?.action === "edit" ? "Restore and send" : "Restore"}
      danger
      busy={busy}
      onConfirm={() => void confirm()}
      onCancel={() => onClose(null)}
    >
      {request?.action === "edit" ? (
        <p>
          The files and the conversation go back to where they were before this prompt (the checkpoint of the turn before it), and the edited prompt is
          sent as a new turn. Later turns are kept aside; the checkpoint timeline’s undo point brings them back.
        </p>
      ) : request ? (
        <p>
          The files and the conversation go back to the end of turn {request.number}. Later turns are kept aside; the checkpoint timeline’s undo point
          brings them back. Terminals in the sandbox are closed.
        </p>
      ) : null}
    </ConfirmDialog>
  );
}
