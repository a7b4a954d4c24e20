// The chat's sandbox as server state: where it runs, whether it is isolated, and whether it
// runs, is paused or is stopped; and pausing, resuming or restarting it by hand.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { SandboxInfo } from "@/shared/api/types";

export const sandboxKeys = {
  detail: (chatId: string) => ["sandbox", chatId] as const,
};

export function useSandbox(chatId: string) {
  return useQuery({
    queryKey: sandboxKeys.detail(chatId),
    queryFn: () => request<SandboxInfo>(`/api/v1/chats/${chatId}/sandbox`),
    // A sandbox pauses by itself when idle and starts on its next use: look now and then.
    refetchInterval: 10_000,
  });
}

export function useSandboxAction(chatId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    // A restart answers once the sandbox runs again, so its answer is the new status too.
    mutationFn: (action: "pause" | "resume" | "restart") => request<SandboxInfo>(`/api/v1/chats/${chatId}/sandbox/${action}`, { method: "POST" }),
    onSuccess: (info) => queryClient.setQueryData(sandboxKeys.detail(chatId), info),
  });
}
