// The user's secrets and a chat's overrides of them as server state: names, kinds and
// masked values only (the server never returns a value), set and deleted one at a time.
import { useMutation, useQuery, useQueryClient, type QueryKey } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { PutSecretRequest, SecretInfo } from "@/shared/api/types";

export type { SecretInfo };

export const secretKeys = {
  user: () => ["secrets", "user"] as const,
  chat: (chatId: string) => ["secrets", "chat", chatId] as const,
};

const byName = (a: SecretInfo, b: SecretInfo) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Where one list of secrets lives: the user's own or one chat's overrides. */
interface SecretsScope {
  key: QueryKey;
  /** The collection's URL; one secret is at `${url}/{name}`. */
  url: string;
}

const userScope = (): SecretsScope => ({ key: secretKeys.user(), url: "/api/v1/secrets" });
const chatScope = (chatId: string): SecretsScope => ({ key: secretKeys.chat(chatId), url: `/api/v1/chats/${encodeURIComponent(chatId)}/secrets` });

function useScopeSecrets({ key, url }: SecretsScope) {
  return useQuery({ queryKey: key, queryFn: () => request<SecretInfo[]>(url) });
}

function usePutScopeSecret({ key, url }: SecretsScope) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ name, value }: { name: string; value: string }) =>
      request<SecretInfo>(`${url}/${encodeURIComponent(name)}`, { method: "PUT", body: { value } satisfies PutSecretRequest }),
    onSuccess: (secret) =>
      queryClient.setQueryData<SecretInfo[]>(key, (secrets) => [...(secrets ?? []).filter((s) => s.name !== secret.name), secret].sort(byName)),
  });
}

function useDeleteScopeSecret({ key, url }: SecretsScope) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => request<void>(`${url}/${encodeURIComponent(name)}`, { method: "DELETE" }),
    onSuccess: (_, name) => queryClient.setQueryData<SecretInfo[]>(key, (secrets) => secrets?.filter((s) => s.name !== name)),
  });
}

export const useSecrets = () => useScopeSecrets(userScope());
export const usePutSecret = () => usePutScopeSecret(userScope());
export const useDeleteSecret = () => useDeleteScopeSecret(userScope());

/** A chat's overrides of the user's secrets (the chat's value wins in that chat). */
export const useChatSecrets = (chatId: string) => useScopeSecrets(chatScope(chatId));
export const usePutChatSecret = (chatId: string) => usePutScopeSecret(chatScope(chatId));
export const useDeleteChatSecret = (chatId: string) => useDeleteScopeSecret(chatScope(chatId));
