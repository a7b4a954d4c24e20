// Accounts: the public set-up status, sign-up, sign-in, sign-out, the current user and a
// password change.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request, sessionFromTokens } from "@/shared/api/client";
import type { ChangePasswordRequest, LoginRequest, LogoutRequest, RegisterRequest, SetupStatus, TokenResponse, User } from "@/shared/api/types";
import { useSessionStore } from "../model/session";

export const authKeys = {
  all: ["auth"] as const,
  setup: () => [...authKeys.all, "setup"] as const,
  me: () => [...authKeys.all, "me"] as const,
};

export function useSetupStatus() {
  return useQuery({
    queryKey: authKeys.setup(),
    queryFn: () => request<SetupStatus>("/api/v1/setup", { auth: false }),
    staleTime: 60_000,
  });
}

export function useMe(enabled: boolean) {
  return useQuery({ queryKey: authKeys.me(), queryFn: () => request<User>("/api/v1/auth/me"), enabled, staleTime: 5 * 60_000 });
}

async function login(body: LoginRequest): Promise<TokenResponse> {
  return request<TokenResponse>("/api/v1/auth/login", { method: "POST", body, auth: false });
}

/** Signs in; a different user than before starts with an empty cache. */
export function useSignIn() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: login,
    onSuccess: (tokens, body) => {
      const store = useSessionStore.getState();
      if (store.lastEmail !== body.email) queryClient.clear();
      store.signedIn(sessionFromTokens(tokens), body.email);
      void queryClient.invalidateQueries();
    },
  });
}

/** Creates an account and signs in with it. */
export function useRegister() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: RegisterRequest) => {
      await request<User>("/api/v1/auth/register", { method: "POST", body, auth: false });
      return login({ email: body.email, password: body.password });
    },
    onSuccess: (tokens, body) => {
      queryClient.clear();
      useSessionStore.getState().signedIn(sessionFromTokens(tokens), body.email);
    },
  });
}

export function useSignOut() {
  const queryClient = useQueryClient();
  return useMutation({
    // Revoking this sign-in's refresh tokens is best effort: signing out locally must always work.
    mutationFn: () => {
      const session = useSessionStore.getState().session;
      const body: LogoutRequest = { refresh_token: session?.refreshToken ?? null };
      return request<void>("/api/v1/auth/logout", { method: "POST", body }).catch(() => undefined);
    },
    onSettled: () => {
      useSessionStore.getState().signedOut();
      queryClient.clear();
    },
  });
}

/** Changes the password; the server ends every other sign-in and answers with new tokens
 * for this one, which replace the session's. */
export function useChangePassword() {
  return useMutation({
    mutationFn: (body: ChangePasswordRequest) => request<TokenResponse>("/api/v1/auth/password", { method: "POST", body }),
    onSuccess: (tokens) => useSessionStore.getState().refreshed(sessionFromTokens(tokens)),
  });
}
