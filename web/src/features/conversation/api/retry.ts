// Retry: the latest turn, failed or stopped, runs again with its prompt as a new turn; the
// chat's stream brings its events.
import { useMutation } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { PostMessageResponse } from "@/shared/api/types";

export function useRetryTurn(chatId: string) {
  return useMutation({
    mutationFn: (messageId: string) =>
      request<PostMessageResponse>(`/api/v1/chats/${chatId}/messages/${messageId}/retry`, { method: "POST" }),
  });
}
