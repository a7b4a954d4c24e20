import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Chat, GitStatus } from "@/shared/api/types";
import { chatKeys } from "@/features/chats/api/chats";
import { ChangesPanel } from "./ChangesPanel";

const CHAT = "00000000-0000-0000-0000-0000000000c2";

const chat = {
  id: CHAT,
  title: "A repository chat",
  model: "claude-sonnet-4-5",
  permission_mode: "auto",
  status: "idle",
  last_event_id: 3,
  sandbox_provider: "local",
  created_at: "2030-01-01T00:00:00Z",
  updated_at: "2030-01-01T00:00:00Z",
} as Chat;

const status: GitStatus = {
  url: "https://git.example.com/acme/project.git",
  path: "/home/user/project",
  branch: "main",
  commit: "1234567890abcdef",
  upstream: "origin/main",
  ahead: 1,
  behind: 0,
  changes: [{ path: "README.md", original_path: null, kind: "modified", staged: false, unstaged: true }],
};

const DIFF = "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # project\n+a line\n";

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function renderPanel(answer: (path: string, init: RequestInit) => Response) {
  const requests: string[] = [];
  vi.stubGlobal("fetch", async (path: string, init: RequestInit = {}) => {
    requests.push(`${init.method ?? "GET"} ${path}`);
    if (path.endsWith(`/chats/${CHAT}`)) return json(chat);
    return answer(path, init);
  });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  client.setQueryData(chatKeys.detail(CHAT), chat);
  render(
    <QueryClientProvider client={client}>
      <ChangesPanel chatId={CHAT} visible />
    </QueryClientProvider>,
  );
  return requests;
}

afterEach(() => vi.unstubAllGlobals());

describe("ChangesPanel", () => {
  it("says so for a chat that was not started from a repository", async () => {
    renderPanel(() => json({ error: { code: "no_repository", message: "no" } }, 404));
    expect(await screen.findByText(/not started from a repository/)).toBeTruthy();
  });

  it("lists the changed files, shows a file's diff with its counts, and commits", async () => {
    const requests = renderPanel((path, init) => {
      if (path.endsWith("/git/status")) return json(status);
      if (path.includes("/git/diff")) return json({ diff: DIFF, truncated: false });
      if (path.endsWith("/git/commit") && init.method === "POST") return json({ branch: "main", commit: "abcdef0123", output: "" });
      return json({ error: { code: "not_found", message: "no" } }, 404);
    });
    fireEvent.click(await screen.findByRole("button", { name: /README\.md/ }));
    expect(await screen.findByText("+1")).toBeTruthy();
    expect(screen.getByText("−0")).toBeTruthy();
    expect(screen.getByText("+a line")).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Commit message"), { target: { value: "A change" } });
    fireEvent.click(screen.getByRole("button", { name: "Commit all" }));
    expect(await screen.findByText(/Committed \(main at abcdef01\)/)).toBeTruthy();
    await waitFor(() => expect(requests).toContain(`POST /api/v1/chats/${CHAT}/git/commit`));
  });
});
