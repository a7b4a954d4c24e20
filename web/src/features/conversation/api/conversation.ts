// The conversation as server state. Its cache entry is a `Conversation` (see the model): built
// from `GET .../messages` and kept current by the chat's stream, which applies each event to
// the cached value. A refetch merges with what the stream applied meanwhile, never replaces it.
import { useMutation, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { Message, PostMessageRequest, PostMessageResponse } from "@/shared/api/types";
import { chatKeys } from "@/features/chats/api/chats";
import { fromMessages, mergeSnapshot, type Conversation } from "../model/conversation";

export const conversationKeys = {
  all: ["conversation"] as const,
  detail: (chatId: string) => [...conversationKeys.all, chatId] as const,
};

/** Fetches the messages and merges them into the cached conversation, atomically. */
export async function loadConversation(queryClient: QueryClient, chatId: string): Promise<Conversation> {
  const messages = await request<Message[]>(`/api/v1/chats/${chatId}/messages`);
  const key = conversationKeys.detail(chatId);
  // Merge in the same task as the write below, so no stream event can slip in between.
  const merged = mergeSnapshot(queryClient.getQueryData<Conversation>(key), fromMessages(messages));
  queryClient.setQueryData(key, merged);
  return merged;
}

export function conversationQuery(queryClient: QueryClient, chatId: string) {
  return {
    queryKey: conversationKeys.detail(chatId),
    queryFn: () => loadConversation(queryClient, chatId),
    // The stream keeps it current; refetching on focus would only repeat what it has.
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  } as const;
}

export function useSendMessage(chatId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: PostMessageRequest) =>
      request<PostMessageResponse>(`/api/v1/chats/${chatId}/messages`, { method: "POST", body }),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: chatKeys.list() });
      void queryClient.invalidateQueries({ queryKey: chatKeys.detail(chatId) });
    },
  });
}

export function useInterrupt(chatId: string) {
  return useMutation({
    mutationFn: () => request<{ message_id: string }>(`/api/v1/chats/${chatId}/stream`, { method: "DELETE" }),
  });
}
