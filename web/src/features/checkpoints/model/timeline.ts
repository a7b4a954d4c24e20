// The checkpoint timeline as people read it: which turn each checkpoint belongs to (the
// prompt that started it, taken from the cached conversation), what it changed, and what
// restoring or forking it would do. Pure functions of the API's list and the conversation.
import { ApiError } from "@/shared/api/client";
import type { Conversation } from "@/features/conversation/model/conversation";
import { formatSize } from "@/features/files/model/document";
import type { CheckpointInfo } from "../api/checkpoints";

/** A turn of the conversation: its number (1-based, among the shown turns) and its prompt. */
export interface TurnInfo {
  number: number;
  prompt: string;
}

/**
 * The shown turns by assistant message id. A turn's prompt is the text of the nearest user
 * message before its assistant message (a user message precedes each assistant message).
 */
export function turnsOf(conversation: Conversation | undefined): Map<string, TurnInfo> {
  const turns = new Map<string, TurnInfo>();
  if (!conversation) return turns;
  let prompt = "";
  for (const message of conversation.messages) {
    if (message.role === "user") {
      prompt = message.blocks
        .filter((b) => b.kind === "user")
        .map((b) => b.text)
        .join("\n");
    } else {
      turns.set(message.id, { number: turns.size + 1, prompt });
      prompt = "";
    }
  }
  return turns;
}

/** One line of at most `max` characters, cut at a word when one ends near the limit. */
export function abbreviate(text: string, max = 60): string {
  const line = text.replace(/\s+/g, " ").trim();
  if (line.length <= max) return line;
  const cut = line.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

export type CheckpointKind = "turn" | "before_restore" | "fork" | "other";

export function kindOf(checkpoint: Pick<CheckpointInfo, "kind">): CheckpointKind {
  const { kind } = checkpoint;
  return kind === "turn" || kind === "before_restore" || kind === "fork" ? kind : "other";
}

/** What an entry of the timeline says. */
export interface EntryView {
  id: string;
  kind: CheckpointKind;
  /** The entry's name, e.g. "Turn 2" or "Before restore (undo point)". */
  title: string;
  /** The turn's prompt, abbreviated; `null` when it is not known. */
  prompt: string | null;
  /** The whole prompt, for a tooltip. */
  fullPrompt: string | null;
  /** Files changed since the checkpoint before it, in words: "2 files changed, 1 added". */
  changes: string;
  /** The same by kind, every kind named: "1 added, 2 modified, 0 deleted". */
  changesLabel: string;
  /** Storage this checkpoint added, e.g. "1.2 KiB". */
  added: string;
  /** The whole workspace at that point, e.g. "12 files, 40.0 KiB". */
  total: string;
  createdAt: string;
  /** Forks start from a turn's checkpoint only (the API forks from an assistant message). */
  canFork: boolean;
  /** The assistant message a fork starts from. */
  messageId: string | null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * What a checkpoint changed, in words: the first kind with its noun ("2 files changed"), the
 * others after it ("1 added", "3 deleted"); "No files changed" for none.
 */
export function changeWords(added: number, modified: number, deleted: number): string {
  const parts = (
    [
      [modified, "changed"],
      [added, "added"],
      [deleted, "deleted"],
    ] as const
  ).filter(([count]) => count > 0);
  if (parts.length === 0) return "No files changed";
  return parts.map(([count, verb], index) => (index === 0 ? `${plural(count, "file")} ${verb}` : `${count} ${verb}`)).join(", ");
}

export function describeCheckpoint(checkpoint: CheckpointInfo, turns: Map<string, TurnInfo>, conversationLoaded: boolean): EntryView {
  const kind = kindOf(checkpoint);
  const messageId = checkpoint.message_id ?? null;
  const turn = messageId ? turns.get(messageId) : undefined;
  let title: string;
  switch (kind) {
    case "turn":
      // A turn missing from a loaded conversation was hidden by a restore (restoring this
      // checkpoint brings it back).
      title = turn ? `Turn ${turn.number}` : conversationLoaded ? "A turn no longer shown" : "Turn";
      break;
    case "before_restore":
      title = "Before restore (undo point)";
      break;
    case "fork":
      title = "Start of this fork";
      break;
    default:
      title = `Checkpoint (${checkpoint.kind})`;
  }
  // Only a turn's own checkpoint is named by its prompt: an undo point merely points at the
  // latest message of its moment, which would read as if it were that turn.
  const prompt = kind === "turn" && turn?.prompt ? turn.prompt : null;
  return {
    id: checkpoint.id,
    kind,
    title,
    prompt: prompt === null ? null : abbreviate(prompt),
    fullPrompt: prompt,
    changes: changeWords(checkpoint.files_added, checkpoint.files_modified, checkpoint.files_deleted),
    changesLabel: `${checkpoint.files_added} added, ${checkpoint.files_modified} modified, ${checkpoint.files_deleted} deleted`,
    added: formatSize(checkpoint.bytes_added),
    total: `${plural(checkpoint.files, "file")}, ${formatSize(checkpoint.bytes)}`,
    createdAt: checkpoint.created_at,
    canFork: kind === "turn" && messageId !== null,
    messageId,
  };
}

/**
 * The timeline, newest first. The server sends it in that order already; sorting again keeps
 * the order right whatever the source (ties keep the server's order).
 */
export function timeline(checkpoints: readonly CheckpointInfo[], conversation: Conversation | undefined): EntryView[] {
  const turns = turnsOf(conversation);
  return checkpoints
    .map((checkpoint, index) => ({ checkpoint, index, time: Date.parse(checkpoint.created_at) }))
    .sort((a, b) => (b.time - a.time) || (a.index - b.index))
    .map(({ checkpoint }) => describeCheckpoint(checkpoint, turns, conversation !== undefined));
}

/** The entry's name with its prompt, for dialogs and accessible names: `Turn 2 ("write b")`. */
export function entryName(entry: Pick<EntryView, "title" | "prompt">): string {
  return entry.prompt ? `${entry.title} (“${entry.prompt}”)` : entry.title;
}

/** Why a restore or fork failed, in words for the panel. */
export function failureText(error: unknown, action: "restore" | "fork" | "load"): string {
  const what = action === "restore" ? "The restore failed" : action === "fork" ? "The fork failed" : "The checkpoints could not be loaded";
  if (!(error instanceof ApiError)) return `${what}: something went wrong.`;
  if (error.status === 409 || error.code === "turn_in_progress") {
    return `${what}: a turn is running in this chat. Wait for it to finish (or interrupt it), then try again.`;
  }
  if (error.code === "checkpoints_disabled") return "Checkpoints are turned off on this server.";
  return `${what}: ${error.message}`;
}

/** When a checkpoint was taken: the time (with seconds: turns can be seconds apart) and, on another day, the date; `full` for a tooltip. */
export function formatCheckpointTime(iso: string, now: Date = new Date()): { short: string; full: string } {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return { short: iso, full: iso };
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const sameDay = date.toDateString() === now.toDateString();
  const day = date.toLocaleDateString([], { month: "short", day: "numeric", ...(date.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }) });
  return { short: sameDay ? time : `${day}, ${time}`, full: date.toLocaleString() };
}
