// Answering a chat's permission requests, questions and plans. The outcome reaches the
// conversation as the `permission_resolved` event on the stream; the answer's own response
// only matters for its errors (answered already, turn over, a bad answer).
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { PermissionAnswerRequest, PermissionAnswerResponse } from "@/shared/api/types";
import { chatKeys } from "@/features/chats/api/chats";

export function useAnswerPermission(chatId: string, requestId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: PermissionAnswerRequest) =>
      request<PermissionAnswerResponse>(`/api/v1/chats/${chatId}/permissions/${encodeURIComponent(requestId)}`, { method: "POST", body }),
    onSuccess: (answer) => {
      // An approved plan may have switched the chat's mode; the waiting count changed too.
      void queryClient.invalidateQueries({ queryKey: chatKeys.detail(chatId) });
      void queryClient.invalidateQueries({ queryKey: chatKeys.list() });
      return answer;
    },
  });
}
