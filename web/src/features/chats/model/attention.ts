// Which chats need the user: their state at a glance (running, waiting for an answer, a
// scheduled run that ended unseen, idle, paused), the number that need them (shown in the
// tab's title as a badge), and which chats have just started waiting (a browser
// notification, when the user allowed them).
import type { Chat } from "@/shared/api/types";

export type ChatState = "waiting" | "running" | "news" | "paused" | "idle";

export function chatState(chat: Pick<Chat, "status" | "pending_requests" | "sandbox_status"> & Partial<Pick<Chat, "unseen_task_run">>): ChatState {
  if (chat.pending_requests > 0) return "waiting";
  if (chat.status === "running") return "running";
  if (chat.unseen_task_run) return "news";
  if (chat.sandbox_status === "paused") return "paused";
  return "idle";
}

/** The ids of the chats that need the user: waiting for an answer, or holding a scheduled run that ended since they last looked. */
export function attentionChats(chats: readonly Chat[]): Set<string> {
  return new Set(chats.filter((c) => c.pending_requests > 0 || c.unseen_task_run).map((c) => c.id));
}

/** The ids of the chats that wait for the user. */
export function waitingChats(chats: readonly Chat[]): Set<string> {
  return new Set(chats.filter((c) => c.pending_requests > 0).map((c) => c.id));
}

/** Chats waiting now that did not wait before: each deserves one notification. */
export function newlyWaiting(before: ReadonlySet<string>, now: ReadonlySet<string>): string[] {
  return [...now].filter((id) => !before.has(id));
}

/** The tab's title: the count of chats that need the user in front, like an unread badge. */
export function titleWithBadge(base: string, waiting: number): string {
  return waiting > 0 ? `(${waiting}) ${base}` : base;
}
