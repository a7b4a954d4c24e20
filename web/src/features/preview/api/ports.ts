// The ports listening in the chat's sandbox as server state (polled while the Preview tab is
// shown: a dev server the agent starts appears within seconds), and the signed link that
// opens one of them.
import { useMutation, useQuery } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { PortList, PreviewLink } from "@/shared/api/types";

export const portKeys = {
  list: (chatId: string) => ["ports", chatId] as const,
};

export function usePorts(chatId: string, visible: boolean) {
  return useQuery({
    queryKey: portKeys.list(chatId),
    queryFn: () => request<PortList>(`/api/v1/chats/${chatId}/ports`),
    enabled: visible,
    refetchInterval: visible ? 3_000 : false,
  });
}

/** A fresh link for the port: it sets the preview's cookie and lands on the preview's root. */
export function useOpenPort(chatId: string) {
  return useMutation({
    mutationFn: (port: number) => request<PreviewLink>(`/api/v1/chats/${chatId}/ports/${port}/open`, { method: "POST" }),
  });
}
