// A chat's checkpoints as server state: the timeline (one React Query entry per chat), and the
// two things a checkpoint offers, restore (the workspace and the conversation go back to it)
// and fork (a new chat starts from it). Each refreshes what it changed once it is done.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { Chat, CheckpointInfo, ForkRequest, RestoreResponse } from "@/shared/api/types";
import { chatKeys } from "@/features/chats/api/chats";
import { loadConversation } from "@/features/conversation/api/conversation";
import { fileKeys } from "@/features/files/api/files";
import { sandboxKeys } from "@/features/sandbox/api/sandbox";

export type { CheckpointInfo, ForkRequest, RestoreResponse };

export const checkpointKeys = {
  all: ["checkpoints"] as const,
  list: (chatId: string) => [...checkpointKeys.all, chatId] as const,
};

const base = (chatId: string) => `/api/v1/chats/${chatId}`;

export function checkpointsQuery(chatId: string) {
  return {
    queryKey: checkpointKeys.list(chatId),
    queryFn: ({ signal }: { signal: AbortSignal }) => request<CheckpointInfo[]>(`${base(chatId)}/checkpoints`, { signal }),
    // A new checkpoint only appears when a turn ends or after a restore; the panel refetches
    // on exactly those, and when it is shown again.
    staleTime: 5_000,
  } as const;
}

/** Restores a checkpoint, then refreshes the timeline, the file tree and the conversation. */
export function useRestoreCheckpoint(chatId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (checkpointId: string) =>
      request<RestoreResponse>(`${base(chatId)}/checkpoints/${checkpointId}/restore`, { method: "POST" }),
    onSuccess: async () => {
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: checkpointKeys.list(chatId) }),
        queryClient.invalidateQueries({ queryKey: fileKeys.all(chatId) }),
        // The restore stopped the sandbox; its status says so on the next look.
        queryClient.invalidateQueries({ queryKey: sandboxKeys.detail(chatId) }),
        queryClient.invalidateQueries({ queryKey: chatKeys.detail(chatId) }),
        // The stream's `system/rewind` event updates the conversation; this refetch covers a
        // stream that is reconnecting just then. A failure here is not the restore's.
        loadConversation(queryClient, chatId).catch(() => undefined),
      ]);
    },
  });
}

/** Forks a new chat from a turn and puts it into the chat list; the caller navigates to it. */
export function useForkChat(chatId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: ForkRequest) => request<Chat>(`${base(chatId)}/fork`, { method: "POST", body }),
    onSuccess: (chat) => {
      queryClient.setQueryData(chatKeys.detail(chat.id), chat);
      void queryClient.invalidateQueries({ queryKey: chatKeys.list() });
    },
  });
}
