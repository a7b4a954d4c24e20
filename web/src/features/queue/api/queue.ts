// Follow-up prompts written while a turn runs: they wait in the chat's queue on the server and
// run one after the other, in order, once the turn ends. The stream's turn events refresh the
// list (see the conversation's stream); changes made here refresh it at once.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { QueuedMessage, QueueMessageRequest, SendQueuedResponse, UpdateQueuedMessageRequest } from "@/shared/api/types";

export const queueKeys = {
  all: ["queue"] as const,
  list: (chatId: string) => [...queueKeys.all, chatId] as const,
};

export function useQueue(chatId: string) {
  return useQuery({
    queryKey: queueKeys.list(chatId),
    queryFn: () => request<QueuedMessage[]>(`/api/v1/chats/${chatId}/queue`),
    // Only prompts still waiting; one that became a turn shows in the conversation.
    select: (list) => list.filter((q) => !q.message_id),
  });
}

function useQueueMutation<T, R>(chatId: string, fn: (vars: T) => Promise<R>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: fn,
    onSettled: () => void queryClient.invalidateQueries({ queryKey: queueKeys.list(chatId) }),
  });
}

export function useEnqueue(chatId: string) {
  return useQueueMutation(chatId, (body: QueueMessageRequest) => request<QueuedMessage>(`/api/v1/chats/${chatId}/queue`, { method: "POST", body }));
}

export function useUpdateQueued(chatId: string) {
  return useQueueMutation(chatId, ({ id, ...body }: UpdateQueuedMessageRequest & { id: string }) =>
    request<QueuedMessage>(`/api/v1/chats/${chatId}/queue/${id}`, { method: "PATCH", body }),
  );
}

export function useDeleteQueued(chatId: string) {
  return useQueueMutation(chatId, (id: string) => request<void>(`/api/v1/chats/${chatId}/queue/${id}`, { method: "DELETE" }));
}

/** Runs the queued prompt now: the running turn is interrupted first. */
export function useSendQueuedNow(chatId: string) {
  return useQueueMutation(chatId, (id: string) => request<SendQueuedResponse>(`/api/v1/chats/${chatId}/queue/${id}/send`, { method: "POST" }));
}
