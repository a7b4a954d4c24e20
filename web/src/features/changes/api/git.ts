// A repository chat's git state as server state: the status (one React Query entry per
// chat), a file's diff, and the actions (commit, push, pull, pull request), each of which
// refreshes the status when it is done.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { GitCommitRequest, GitDiff, GitPullRequest, GitPullRequestRequest, GitResult, GitStatus } from "@/shared/api/types";

export type { GitDiff, GitPullRequest, GitResult, GitStatus };

export const gitKeys = {
  all: (chatId: string) => ["git", chatId] as const,
  status: (chatId: string) => [...gitKeys.all(chatId), "status"] as const,
  diff: (chatId: string, path: string) => [...gitKeys.all(chatId), "diff", path] as const,
};

const base = (chatId: string) => `/api/v1/chats/${chatId}/git`;

export function gitStatusQuery(chatId: string) {
  return {
    queryKey: gitKeys.status(chatId),
    queryFn: ({ signal }: { signal: AbortSignal }) => request<GitStatus>(`${base(chatId)}/status`, { signal }),
    // A chat without a repository (404) or not cloned yet (409) answers the same until a
    // turn runs; asking again at once would only repeat it.
    retry: false,
    staleTime: 3_000,
  } as const;
}

export function gitDiffQuery(chatId: string, path: string) {
  return {
    queryKey: gitKeys.diff(chatId, path),
    queryFn: ({ signal }: { signal: AbortSignal }) =>
      request<GitDiff>(`${base(chatId)}/diff?path=${encodeURIComponent(path)}`, { signal }),
    retry: false,
  } as const;
}

/** Commit, push or pull; the status and every diff are refetched afterwards. */
export function useGitAction(chatId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ action, body }: { action: "commit" | "push" | "pull"; body?: GitCommitRequest }) =>
      request<GitResult>(`${base(chatId)}/${action}`, { method: "POST", body }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: gitKeys.all(chatId) }),
  });
}

export function usePullRequest(chatId: string) {
  return useMutation({
    mutationFn: (body: GitPullRequestRequest) => request<GitPullRequest>(`${base(chatId)}/pull-request`, { method: "POST", body }),
  });
}
