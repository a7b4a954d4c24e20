// The chat's total cost and the user's total for today, as server state. The key sits under
// the chat's own, so that the stream's refresh after every turn refreshes it too.
import { useQuery } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { ChatCosts } from "@/shared/api/types";
import { chatKeys } from "@/features/chats/api/chats";

/** Midnight today in the browser's time zone: "today" is the user's day, not UTC's. */
export function startOfToday(now: Date = new Date()): string {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString();
}

export function useChatCosts(chatId: string) {
  const since = startOfToday();
  return useQuery({
    queryKey: [...chatKeys.detail(chatId), "costs", since],
    queryFn: () => request<ChatCosts>(`/api/v1/chats/${chatId}/costs?since=${encodeURIComponent(since)}`),
  });
}
