// Which checkpoint "Restore to here" and Edit go back to: a turn's own checkpoint (taken when
// it ended), and for a prompt the checkpoint of the turn before it. Pure functions of the
// checkpoint list and the conversation.
import type { CheckpointInfo } from "@/shared/api/types";
import type { MessageView } from "./conversation";

/** The newest `turn` checkpoint taken after the assistant message `assistantId`. */
export function checkpointOfTurn(checkpoints: readonly CheckpointInfo[], assistantId: string): CheckpointInfo | null {
  const own = checkpoints.filter((c) => c.kind === "turn" && c.message_id === assistantId);
  own.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  return own[0] ?? null;
}

/** The turn before the prompt `userId` (the assistant message preceding it), or null for the first prompt. */
export function turnBefore(messages: readonly MessageView[], userId: string): MessageView | null {
  const index = messages.findIndex((m) => m.id === userId);
  if (index <= 0) return null;
  return messages.slice(0, index).findLast((m) => m.role === "assistant") ?? null;
}

/** The checkpoint an edit of the prompt `userId` restores first: the one of the turn before it. */
export function checkpointBeforePrompt(checkpoints: readonly CheckpointInfo[], messages: readonly MessageView[], userId: string): CheckpointInfo | null {
  const before = turnBefore(messages, userId);
  return before ? checkpointOfTurn(checkpoints, before.id) : null;
}

/** The text of a user message, as the person wrote it. */
export function promptText(message: MessageView): string {
  return message.blocks.map((b) => (b.kind === "user" ? b.text : "")).join("\n");
}

/** What the user asked to go back for: a turn's "Restore to here" (`number`: its place), or an edited prompt. */
export type RewindRequest = { action: "restore"; turn: MessageView; number: number } | { action: "edit"; prompt: MessageView; text: string };
