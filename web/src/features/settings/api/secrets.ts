// The user's secrets as server state: names, kinds and masked values only (the server never
// returns a value), set and deleted one at a time.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { PutSecretRequest, SecretInfo } from "@/shared/api/types";

export type { SecretInfo };

export const secretKeys = {
  user: () => ["secrets", "user"] as const,
};

export function useSecrets() {
  return useQuery({
    queryKey: secretKeys.user(),
    queryFn: () => request<SecretInfo[]>("/api/v1/secrets"),
  });
}

export function usePutSecret() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ name, value }: { name: string; value: string }) =>
      request<SecretInfo>(`/api/v1/secrets/${encodeURIComponent(name)}`, { method: "PUT", body: { value } satisfies PutSecretRequest }),
    onSuccess: (secret) =>
      queryClient.setQueryData<SecretInfo[]>(secretKeys.user(), (secrets) =>
        [...(secrets ?? []).filter((s) => s.name !== secret.name), secret].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      ),
  });
}

export function useDeleteSecret() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => request<void>(`/api/v1/secrets/${encodeURIComponent(name)}`, { method: "DELETE" }),
    onSuccess: (_, name) => queryClient.setQueryData<SecretInfo[]>(secretKeys.user(), (secrets) => secrets?.filter((s) => s.name !== name)),
  });
}
