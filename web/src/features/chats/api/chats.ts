// Chats as server state: the list, one chat, and the changes to them. Keys come from one
// factory so that invalidation names exactly what it means.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { Chat, CreateChatRequest, UpdateChatRequest } from "@/shared/api/types";

export const chatKeys = {
  all: ["chats"] as const,
  list: () => [...chatKeys.all, "list"] as const,
  // Under `list`, so that whatever refreshes the list refreshes these too.
  search: (q: string) => [...chatKeys.list(), "search", q] as const,
  archived: () => [...chatKeys.list(), "archived"] as const,
  detail: (chatId: string) => [...chatKeys.all, "detail", chatId] as const,
};

export function useChats(enabled = true) {
  return useQuery({
    queryKey: chatKeys.list(),
    queryFn: () => request<Chat[]>("/api/v1/chats"),
    enabled,
    // The open chat's stream keeps its own status current; this catches the others: often
    // while one runs (it may start waiting for an answer), rarely while all are idle.
    refetchInterval: (query) => (query.state.data?.some((c) => c.status === "running") ? 4_000 : 15_000),
  });
}

/** Chats whose title or messages match `q` (the server searches titles and message text), archived ones included. */
export function useChatSearch(q: string) {
  const query = q.trim();
  return useQuery({
    queryKey: chatKeys.search(query),
    queryFn: () => request<Chat[]>(`/api/v1/chats?q=${encodeURIComponent(query)}`),
    enabled: query !== "",
    // Typing refines a search: the previous results stay until the new ones arrive.
    placeholderData: keepPreviousData,
  });
}

export function useArchivedChats(enabled: boolean) {
  return useQuery({
    queryKey: chatKeys.archived(),
    queryFn: () => request<Chat[]>("/api/v1/chats?archived=true"),
    enabled,
  });
}

export function useChat(chatId: string) {
  const queryClient = useQueryClient();
  return useQuery({
    queryKey: chatKeys.detail(chatId),
    queryFn: () => request<Chat>(`/api/v1/chats/${chatId}`),
    // Seeded from the list so that switching chats shows the header at once.
    initialData: () => queryClient.getQueryData<Chat[]>(chatKeys.list())?.find((c) => c.id === chatId),
    initialDataUpdatedAt: () => queryClient.getQueryState(chatKeys.list())?.dataUpdatedAt,
  });
}

/** Puts a changed chat into the list and its detail entry (keeping the list's preview, which only the list has). */
function storeChat(queryClient: ReturnType<typeof useQueryClient>, chat: Chat): void {
  queryClient.setQueryData(chatKeys.detail(chat.id), chat);
  queryClient.setQueryData<Chat[]>(chatKeys.list(), (list) => {
    const listed = list?.find((c) => c.id === chat.id);
    const next = { ...chat, preview: chat.preview ?? listed?.preview ?? null };
    // An archived chat leaves the main list; one brought back joins it.
    if (chat.archived) return list?.filter((c) => c.id !== chat.id);
    if (!list) return [next];
    return listed ? list.map((c) => (c.id === chat.id ? next : c)) : [next, ...list];
  });
  // The searches and the archive list it may have joined or left.
  void queryClient.invalidateQueries({ queryKey: [...chatKeys.list(), "search"] });
  void queryClient.invalidateQueries({ queryKey: chatKeys.archived() });
}

export function useCreateChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateChatRequest) => request<Chat>("/api/v1/chats", { method: "POST", body }),
    onSuccess: (chat) => storeChat(queryClient, chat),
  });
}

export function useUpdateChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ chatId, ...body }: UpdateChatRequest & { chatId: string }) =>
      request<Chat>(`/api/v1/chats/${chatId}`, { method: "PATCH", body }),
    onSuccess: (chat) => storeChat(queryClient, chat),
  });
}

export function useDeleteChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (chatId: string) => request<void>(`/api/v1/chats/${chatId}`, { method: "DELETE" }),
    onSuccess: (_, chatId) => {
      queryClient.setQueryData<Chat[]>(chatKeys.list(), (list) => list?.filter((c) => c.id !== chatId));
      queryClient.removeQueries({ queryKey: chatKeys.detail(chatId) });
    },
  });
}

/** The user has seen the chat: its ended scheduled runs stop counting as news, here at once and on the server. */
export function useMarkChatSeen() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (chatId: string) => request<void>(`/api/v1/chats/${chatId}/seen`, { method: "POST" }),
    onSuccess: (_, chatId) => {
      const seen = (chat: Chat): Chat => (chat.id === chatId ? { ...chat, unseen_task_run: null } : chat);
      queryClient.setQueryData<Chat[]>(chatKeys.list(), (list) => list?.map(seen));
      queryClient.setQueryData<Chat>(chatKeys.detail(chatId), (chat) => chat && seen(chat));
    },
  });
}

/**
 * A chat created for its first prompt (the home screen's composer): the chat, then the
 * prompt. `chat` is set when the chat was created even if sending the prompt then failed,
 * so that the caller can open it with the prompt kept.
 */
export class StartChatError extends Error {
  constructor(
    readonly cause: unknown,
    readonly chat: Chat | null,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

export function useStartChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ prompt, ...body }: CreateChatRequest & { prompt: string }) => {
      let chat: Chat;
      try {
        chat = await request<Chat>("/api/v1/chats", { method: "POST", body });
      } catch (error) {
        throw new StartChatError(error, null);
      }
      storeChat(queryClient, chat);
      try {
        await request(`/api/v1/chats/${chat.id}/messages`, { method: "POST", body: { prompt } });
      } catch (error) {
        throw new StartChatError(error, chat);
      }
      void queryClient.invalidateQueries({ queryKey: chatKeys.detail(chat.id) });
      return chat;
    },
  });
}
