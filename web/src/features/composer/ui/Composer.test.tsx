import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Chat } from "@/shared/api/types";
import { useDraftStore } from "../model/drafts";
import { act } from "react";
import { setConnectionState } from "@/features/conversation/model/connection";
import { Composer } from "./Composer";

const chat: Chat = {
  id: "00000000-0000-0000-0000-0000000000c1",
  title: "A chat",
  model: "claude-sonnet-4-5",
  permission_mode: "auto",
  status: "idle",
  last_event_id: 0,
  sandbox_provider: "local",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
} as Chat;

function renderComposer(running: boolean) {
  const client = new QueryClient();
  return render(
    <QueryClientProvider client={client}>
      <Composer chat={chat} running={running} />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  useDraftStore.setState({ drafts: {} });
});

describe("the composer", () => {
  it("sends on Enter, keeps Shift+Enter for new lines, and clears the draft once sent", async () => {
    const sent: unknown[] = [];
    vi.stubGlobal("fetch", async (_path: string, init: RequestInit = {}) => {
      sent.push(JSON.parse(String(init.body)));
      return new Response(JSON.stringify({ message_id: "m", chat_id: chat.id, user_message_id: "u" }), { status: 202 });
    });
    renderComposer(false);
    const box = screen.getByRole("textbox", { name: "Prompt" });
    fireEvent.change(box, { target: { value: "first line" } });
    fireEvent.keyDown(box, { key: "Enter", shiftKey: true });
    expect(sent).toEqual([]);
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(sent).toEqual([{ prompt: "first line" }]));
    await waitFor(() => expect((box as HTMLTextAreaElement).value).toBe(""));
  });

  it("keeps the draft when sending fails, and offers Stop while a turn runs", async () => {
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ error: { code: "turn_in_progress", message: "A turn is already running." } }), { status: 409 }));
    const { unmount } = renderComposer(false);
    const box = screen.getByRole("textbox", { name: "Prompt" });
    fireEvent.change(box, { target: { value: "keep me" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await screen.findByText("A turn is already running.");
    expect((box as HTMLTextAreaElement).value).toBe("keep me");
    unmount();

    renderComposer(true);
    expect(screen.getByRole("button", { name: "Stop the running turn" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Send" })).toBeNull();
    // The draft of the chat survived the remount (it lives in the drafts store).
    expect((screen.getByRole("textbox", { name: "Prompt" }) as HTMLTextAreaElement).value).toBe("keep me");
  });

  it("queues a prompt written while a turn runs", async () => {
    const sent: { url: string; body: unknown }[] = [];
    vi.stubGlobal("fetch", async (url: string, init: RequestInit = {}) => {
      sent.push({ url, body: JSON.parse(String(init.body)) });
      return new Response(JSON.stringify({ id: "q1", chat_id: chat.id, prompt: "next" }), { status: 201 });
    });
    renderComposer(true);
    const box = screen.getByRole("textbox", { name: "Prompt" });
    fireEvent.change(box, { target: { value: "next" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(sent).toEqual([{ url: `/api/v1/chats/${chat.id}/queue`, body: { prompt: "next" } }]));
    await waitFor(() => expect((box as HTMLTextAreaElement).value).toBe(""));
  });

  it("clears “the server cannot be reached” once the chat is live again, and keeps the draft", async () => {
    act(() => setConnectionState("reconnecting"));
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("Failed to fetch");
    });
    renderComposer(false);
    const box = screen.getByRole("textbox", { name: "Prompt" });
    fireEvent.change(box, { target: { value: "hello" } });
    fireEvent.keyDown(box, { key: "Enter" });
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("cannot be reached");
    await waitFor(() => expect((box as HTMLTextAreaElement).value).toBe("hello"));
    act(() => setConnectionState("live"));
    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull());
  });

  it("keeps an error the server gave while it is live", async () => {
    act(() => setConnectionState("live"));
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ error: { code: "limit_reached", message: "Too many turns today." } }), { status: 429, headers: { "content-type": "application/json" } }));
    renderComposer(false);
    const box = screen.getByRole("textbox", { name: "Prompt" });
    fireEvent.change(box, { target: { value: "hello" } });
    fireEvent.keyDown(box, { key: "Enter" });
    expect((await screen.findByRole("alert")).textContent).toBeTruthy();
    act(() => setConnectionState("reconnecting"));
    act(() => setConnectionState("live"));
    expect(screen.getByRole("alert")).toBeTruthy();
  });
});
