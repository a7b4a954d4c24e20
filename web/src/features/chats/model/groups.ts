// The chat list's sections: pinned chats first, then the others by the day of their last
// activity (today, yesterday, the last 7 days, older), in the user's own time zone.

export type ChatGroupName = "Pinned" | "Today" | "Yesterday" | "Last 7 days" | "Older";

export interface ChatGroup<T> {
  name: ChatGroupName;
  chats: T[];
}

const ORDER: ChatGroupName[] = ["Pinned", "Today", "Yesterday", "Last 7 days", "Older"];

/** Midnight of the day `at` falls on, local time. */
function startOfDay(at: Date): number {
  return new Date(at.getFullYear(), at.getMonth(), at.getDate()).getTime();
}

function groupOf(chat: { pinned: boolean; updated_at: string }, today: number): ChatGroupName {
  if (chat.pinned) return "Pinned";
  const day = startOfDay(new Date(chat.updated_at));
  // Days counted on the calendar, so that a daylight-saving change (a 23- or 25-hour day)
  // cannot move a chat into the wrong section.
  const daysAgo = Math.round((today - day) / 86_400_000);
  if (daysAgo <= 0) return "Today";
  if (daysAgo === 1) return "Yesterday";
  if (daysAgo < 7) return "Last 7 days";
  return "Older";
}

/** The chats in sections, each keeping the order it was given (newest first); empty sections are left out. */
export function groupChats<T extends { pinned: boolean; updated_at: string }>(chats: T[], now: Date = new Date()): ChatGroup<T>[] {
  const today = startOfDay(now);
  const groups = new Map<ChatGroupName, T[]>();
  for (const chat of chats) {
    const name = groupOf(chat, today);
    groups.set(name, [...(groups.get(name) ?? []), chat]);
  }
  return ORDER.filter((name) => groups.has(name)).map((name) => ({ name, chats: groups.get(name) ?? [] }));
}
