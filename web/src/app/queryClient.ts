// The one QueryClient. Client errors (4xx) are not retried: asking again gets the same answer.
// A 401 anywhere ends the session (after the API client's one refresh attempt), which shows
// sign-in; the cache, the route and the drafts stay, so the user continues where they were.
import { MutationCache, QueryCache, QueryClient } from "@tanstack/react-query";
import { ApiError } from "@/shared/api/client";
import { useSessionStore } from "@/features/auth/model/session";

function onError(error: unknown): void {
  if (error instanceof ApiError && error.status === 401) useSessionStore.getState().expire();
}

export function createQueryClient(): QueryClient {
  return new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      queries: {
        retry: (failures, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && failures < 2,
        staleTime: 5_000,
      },
      mutations: { retry: false },
    },
  });
}
