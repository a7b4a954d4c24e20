import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Chat } from "@/shared/api/types";
import { chatKeys } from "@/features/chats/api/chats";
import { conversationKeys } from "@/features/conversation/api/conversation";
import type { Conversation } from "@/features/conversation/model/conversation";
import type { CheckpointInfo } from "../api/checkpoints";
import { CheckpointsPanel } from "./CheckpointsPanel";

const CHAT = "00000000-0000-0000-0000-0000000000c1";

const chat = {
  id: CHAT,
  title: "A chat",
  model: "claude-sonnet-4-5",
  permission_mode: "auto",
  status: "idle",
  last_event_id: 12,
  sandbox_provider: "local",
  created_at: "2030-01-01T00:00:00Z",
  updated_at: "2030-01-01T00:00:00Z",
} as Chat;

const conversation: Conversation = {
  lastSeq: 12,
  pending: [],
  messages: [
    { id: "u1", role: "user", status: "completed", blocks: [{ kind: "user", seq: 1, text: "write a.txt" }], usage: null, costUsd: null, model: null, live: "", liveThinking: "" },
    { id: "a1", role: "assistant", status: "completed", blocks: [], usage: null, costUsd: null, model: null, live: "", liveThinking: "" },
    { id: "u2", role: "user", status: "completed", blocks: [{ kind: "user", seq: 5, text: "write b.txt" }], usage: null, costUsd: null, model: null, live: "", liveThinking: "" },
    { id: "a2", role: "assistant", status: "completed", blocks: [], usage: null, costUsd: null, model: null, live: "", liveThinking: "" },
  ],
};

const base = { files_added: 1, files_modified: 0, files_deleted: 0, bytes_added: 10, files: 1, bytes: 10 };
const checkpoints: CheckpointInfo[] = [
  { ...base, id: "k2", kind: "turn", message_id: "a2", created_at: "2030-01-01T10:02:00Z", files: 2, bytes: 20 },
  { ...base, id: "k1", kind: "turn", message_id: "a1", created_at: "2030-01-01T10:01:00Z" },
];

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function renderPanel(list: CheckpointInfo[], onRestore: () => Response) {
  const requests: string[] = [];
  vi.stubGlobal("fetch", async (path: string, init: RequestInit = {}) => {
    requests.push(`${init.method ?? "GET"} ${path}`);
    if (path.endsWith("/checkpoints")) return json(list);
    if (path.includes("/restore")) return onRestore();
    if (path.endsWith(`/chats/${CHAT}`)) return json(chat);
    if (path.endsWith("/messages")) return json([]);
    return json({ error: { code: "not_found", message: "no" } }, 404);
  });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  client.setQueryData(chatKeys.detail(CHAT), chat);
  client.setQueryData(conversationKeys.detail(CHAT), conversation);
  render(
    <QueryClientProvider client={client}>
      <CheckpointsPanel chatId={CHAT} visible />
    </QueryClientProvider>,
  );
  return requests;
}

// jsdom's <dialog> has no close(); the shared dialog calls it when it closes.
if (typeof HTMLDialogElement.prototype.close !== "function") {
  HTMLDialogElement.prototype.close = function close(this: HTMLDialogElement) {
    this.removeAttribute("open");
  };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the checkpoints panel", () => {
  it("lists the turns newest first with their prompts and changes", async () => {
    renderPanel(checkpoints, () => json({}));
    const list = await screen.findByRole("list", { name: "Checkpoints, newest first" });
    const items = within(list).getAllByRole("listitem");
    expect(items.map((item) => item.querySelector(".checkpoint-title")?.firstChild?.textContent)).toEqual(["Turn 2", "Turn 1"]);
    expect(within(items[0]!).getByText("“write b.txt”")).toBeTruthy();
    expect(within(items[0]!).getByText("1 file added")).toBeTruthy();
    expect(within(items[0]!).getByText("2 files, 20 B")).toBeTruthy();
    expect(within(items[1]!).getByRole("button", { name: "Fork" })).toBeTruthy();
  });

  it("says when there are no checkpoints yet", async () => {
    renderPanel([], () => json({}));
    await screen.findByText("No checkpoints yet.");
    expect(screen.getByText(/taken after each turn/)).toBeTruthy();
  });

  it("asks before restoring and shows why the server refused", async () => {
    const requests = renderPanel(checkpoints, () =>
      json({ error: { code: "turn_in_progress", message: "A turn is running in this chat." } }, 409),
    );
    const list = await screen.findByRole("list", { name: "Checkpoints, newest first" });
    const turn1 = within(list).getAllByRole("listitem")[1]!;
    fireEvent.click(within(turn1).getByRole("button", { name: "Restore" }));
    const dialog = await screen.findByRole("dialog", { hidden: true });
    expect(within(dialog).getByText(/later messages are hidden/)).toBeTruthy();
    expect(within(dialog).getByText(/Before restore \(undo point\)/)).toBeTruthy();
    // Nothing was sent before the confirmation.
    expect(requests.some((r) => r.includes("/restore"))).toBe(false);
    fireEvent.click(within(dialog).getByRole("button", { name: "Restore", hidden: true }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/a turn is running in this chat/);
    expect(requests).toContain(`POST /api/v1/chats/${CHAT}/checkpoints/k1/restore`);
    await waitFor(() => expect(document.querySelector("dialog[open]")).toBeNull());
  });
});
