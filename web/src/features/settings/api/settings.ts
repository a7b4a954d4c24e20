// The user's settings and a chat's "always allow" rules as server state. A chat's own
// instructions and thinking budget are fields of the chat, changed with `useUpdateChat`.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { StoredPermissionRule, UpdateUserSettingsRequest, UserSettings } from "@/shared/api/types";

export type { StoredPermissionRule, UpdateUserSettingsRequest, UserSettings };

export const settingsKeys = {
  user: () => ["settings", "user"] as const,
  rules: (chatId: string) => ["settings", "rules", chatId] as const,
};

export function useUserSettings() {
  return useQuery({
    queryKey: settingsKeys.user(),
    queryFn: () => request<UserSettings>("/api/v1/settings"),
  });
}

export function useUpdateUserSettings() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: UpdateUserSettingsRequest) => request<UserSettings>("/api/v1/settings", { method: "PATCH", body }),
    onSuccess: (settings) => queryClient.setQueryData(settingsKeys.user(), settings),
  });
}

export function usePermissionRules(chatId: string) {
  return useQuery({
    queryKey: settingsKeys.rules(chatId),
    queryFn: () => request<StoredPermissionRule[]>(`/api/v1/chats/${chatId}/permissions/rules`),
    // Rules are added from request cards while the dialog is closed: read them on each open.
    staleTime: 0,
  });
}

export function useDeletePermissionRule(chatId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (ruleId: string) => request<void>(`/api/v1/chats/${chatId}/permissions/rules/${ruleId}`, { method: "DELETE" }),
    onSuccess: (_, ruleId) =>
      queryClient.setQueryData<StoredPermissionRule[]>(settingsKeys.rules(chatId), (rules) => rules?.filter((r) => r.id !== ruleId)),
  });
}
