import { QueryClient } from "@tanstack/react-query";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ChatEvent, Message } from "@/shared/api/types";
import { conversationKeys } from "../api/conversation";
import { applyEvent, emptyConversation, type Conversation } from "./conversation";
import type { ConnectionState } from "./connection";
import { ChatStream } from "./stream";

const CHAT = "00000000-0000-0000-0000-0000000000c1";
const MESSAGE = "00000000-0000-0000-0000-0000000000a1";
const at = "2026-01-01T00:00:00Z";

function event(seq: number): ChatEvent {
  return seq === 1
    ? { seq, message_id: MESSAGE, created_at: at, type: "user_text", text: "go" }
    : { seq, message_id: MESSAGE, created_at: at, type: "assistant_text", text: `text ${seq}` };
}

function sse(events: ChatEvent[]): string {
  return events.map((e) => `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
}

/** A stream response that sends `text`, then closes or stays open until aborted. */
function streamResponse(text: string, signal: AbortSignal, close: boolean): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      if (close) controller.close();
      else signal.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the chat stream", () => {
  it("resumes after a drop with Last-Event-ID and refetches to fill a gap", async () => {
    const queryClient = new QueryClient();
    const key = conversationKeys.detail(CHAT);
    queryClient.setQueryData<Conversation>(key, [event(1), event(2)].reduce(applyEvent, emptyConversation));

    const streamRequests: (string | null)[] = [];
    let messageFetches = 0;
    vi.stubGlobal("fetch", async (path: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      // The stream asks for the transient text deltas too.
      if (path.endsWith("/stream?deltas=true")) {
        streamRequests.push(headers.get("last-event-id"));
        const signal = init.signal as AbortSignal;
        // First connection: two events, then the network drops. Second: a replayed
        // duplicate, the next event, and one after a gap (6 is missing); then it stays open.
        return streamRequests.length === 1
          ? streamResponse(sse([event(3), event(4)]), signal, true)
          : streamResponse(sse([event(4), event(5), event(7)]), signal, false);
      }
      if (path.endsWith("/messages")) {
        messageFetches += 1;
        const message: Message = {
          id: MESSAGE,
          chat_id: CHAT,
          role: "assistant",
          status: "in_progress",
          content: [1, 2, 3, 4, 5, 6].map(event),
          created_at: at,
        };
        return new Response(JSON.stringify([message]), { status: 200, headers: { "content-type": "application/json" } });
      }
      throw new Error(`unexpected request ${path}`);
    });

    const states: ConnectionState[] = [];
    const stream = new ChatStream({ chatId: CHAT, queryClient, onState: (s) => states.push(s) });
    stream.start();
    try {
      await vi.waitFor(() => expect(queryClient.getQueryData<Conversation>(key)?.lastSeq).toBe(7), { timeout: 5000 });
    } finally {
      stream.stop();
    }

    expect(streamRequests).toEqual(["2", "4"]);
    expect(messageFetches).toBe(1);
    const conversation = queryClient.getQueryData<Conversation>(key);
    const texts = conversation?.messages.flatMap((m) => m.blocks.map((b) => (b.kind === "text" ? b.text : b.kind)));
    expect(texts).toEqual(["user", "text 2", "text 3", "text 4", "text 5", "text 6", "text 7"]);
    expect(conversation?.pending).toEqual([]);
    expect(states).toContain("reconnecting");
    expect(states.at(-1)).toBe("live");
  });

  it("reconnects when the connection goes silent", async () => {
    const queryClient = new QueryClient();
    queryClient.setQueryData<Conversation>(conversationKeys.detail(CHAT), emptyConversation);
    let connections = 0;
    vi.stubGlobal("fetch", async (_path: string, init: RequestInit = {}) => {
      connections += 1;
      // Sends nothing at all, not even keep-alives, until aborted.
      return streamResponse("", init.signal as AbortSignal, false);
    });
    const stream = new ChatStream({ chatId: CHAT, queryClient, onState: () => {}, silenceLimitMs: 50 });
    stream.start();
    try {
      await vi.waitFor(() => expect(connections).toBeGreaterThanOrEqual(2), { timeout: 5000 });
    } finally {
      stream.stop();
    }
  });

  it("goes offline when the browser loses the network and comes back when it returns", async () => {
    const queryClient = new QueryClient();
    queryClient.setQueryData<Conversation>(conversationKeys.detail(CHAT), [event(1)].reduce(applyEvent, emptyConversation));
    const lastEventIds: (string | null)[] = [];
    let online = true;
    vi.spyOn(navigator, "onLine", "get").mockImplementation(() => online);
    vi.stubGlobal("fetch", async (_path: string, init: RequestInit = {}) => {
      if (!online) throw new TypeError("Failed to fetch");
      lastEventIds.push(new Headers(init.headers).get("last-event-id"));
      return streamResponse(lastEventIds.length === 1 ? sse([event(2)]) : "", init.signal as AbortSignal, false);
    });
    const states: ConnectionState[] = [];
    const stream = new ChatStream({ chatId: CHAT, queryClient, onState: (s) => states.push(s) });
    stream.start();
    try {
      await vi.waitFor(() => expect(states.at(-1)).toBe("live"));
      online = false;
      window.dispatchEvent(new Event("offline"));
      await vi.waitFor(() => expect(states.at(-1)).toBe("offline"));
      online = true;
      window.dispatchEvent(new Event("online"));
      await vi.waitFor(() => expect(lastEventIds).toEqual(["1", "2"]));
      await vi.waitFor(() => expect(states.at(-1)).toBe("live"));
    } finally {
      stream.stop();
      vi.restoreAllMocks();
    }
  });

  it("connects again from the last event when the server says reconnect, without showing an error", async () => {
    const queryClient = new QueryClient();
    const key = conversationKeys.detail(CHAT);
    queryClient.setQueryData<Conversation>(key, [event(1)].reduce(applyEvent, emptyConversation));
    const lastEventIds: (string | null)[] = [];
    vi.stubGlobal("fetch", async (_path: string, init: RequestInit = {}) => {
      lastEventIds.push(new Headers(init.headers).get("last-event-id"));
      const signal = init.signal as AbortSignal;
      // First server: one event, then it shuts down. Second: the next event, and it stays.
      return lastEventIds.length === 1
        ? streamResponse(`${sse([event(2)])}retry: 1000\nevent: reconnect\ndata: {"reason":"shutting_down"}\n\n`, signal, true)
        : streamResponse(sse([event(3)]), signal, false);
    });
    const states: ConnectionState[] = [];
    const stream = new ChatStream({ chatId: CHAT, queryClient, onState: (s) => states.push(s) });
    stream.start();
    try {
      await vi.waitFor(() => expect(queryClient.getQueryData<Conversation>(key)?.lastSeq).toBe(3), { timeout: 5000 });
    } finally {
      stream.stop();
    }
    expect(lastEventIds).toEqual(["1", "2"]);
    expect(states).not.toContain("reconnecting");
    expect(states).not.toContain("offline");
    expect(states.at(-1)).toBe("live");
  });
});
