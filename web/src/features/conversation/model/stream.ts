// The chat's live stream: reads `GET .../stream` and applies every event to the cached
// conversation. It resumes by itself: after a network drop, a server restart or a silent
// connection (no keep-alive for too long) it reconnects with `Last-Event-ID` set to the last
// event applied, so the server replays exactly what was missed. Events that arrive after a gap
// are held by the reducer and the conversation is refetched to fill it. A server that shuts
// down says `event: reconnect` and closes: that is no error, the stream connects again (to
// another node, or to this one once it is back) after a moment, from the last event applied.
import type { QueryClient } from "@tanstack/react-query";
import { ApiError, openStream } from "@/shared/api/client";
import { SseParser } from "@/shared/lib/sse";
import { chatKeys } from "@/features/chats/api/chats";
import { queueKeys } from "@/features/queue/api/queue";
import { conversationKeys, loadConversation } from "../api/conversation";
import { applyEvent, emptyConversation, hasGap, type Conversation, type IncomingEvent } from "./conversation";
import type { ConnectionState } from "./connection";

/** The server sends a keep-alive every 15 s; three missed ones mean the connection is dead. */
export const SILENCE_LIMIT_MS = 45_000;
const BACKOFF_MS = [500, 1000, 2000, 5000, 10_000];
/** How long to wait after the server said `event: reconnect` (it is going away). */
export const MOVED_WAIT_MS = 1000;

export interface StreamOptions {
  chatId: string;
  queryClient: QueryClient;
  onState: (state: ConnectionState) => void;
  silenceLimitMs?: number;
}

/**
 * Events whose arrival changes what the chat list shows (a turn started or ended, a request
 * waits for the user or was answered) or the chat's queue (a queued prompt became a turn).
 */
const STATUS_EVENTS = new Set(["user_text", "message_completed", "permission_request", "permission_resolved"]);

export class ChatStream {
  private stopped = false;
  private attempt = 0;
  private current: AbortController | null = null;
  private wake: (() => void) | null = null;
  private resyncing: Promise<void> | null = null;
  /** The server closed the stream with `event: reconnect` (it is shutting down). */
  private movedAway = false;

  constructor(private readonly options: StreamOptions) {}

  start(): void {
    window.addEventListener("online", this.reconnectNow);
    window.addEventListener("offline", this.dropNow);
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("online", this.reconnectNow);
    window.removeEventListener("offline", this.dropNow);
    this.current?.abort();
    this.wake?.();
  }

  /**
   * The browser says it lost the network: an open connection may never notice by itself
   * (until the silence limit), so it is dropped now and the indicator says "offline" at once.
   */
  readonly dropNow = (): void => {
    this.current?.abort();
  };

  /** Drops the current connection (or the wait before the next) and connects again. */
  readonly reconnectNow = (): void => {
    this.attempt = 0;
    this.current?.abort();
    this.wake?.();
  };

  private get key() {
    return conversationKeys.detail(this.options.chatId);
  }

  private conversation(): Conversation | undefined {
    return this.options.queryClient.getQueryData<Conversation>(this.key);
  }

  private async run(): Promise<void> {
    const { queryClient, chatId, onState } = this.options;
    while (!this.stopped) {
      onState(this.attempt === 0 ? "connecting" : "reconnecting");
      const controller = new AbortController();
      this.current = controller;
      try {
        const loaded = this.conversation() ?? (await loadConversation(queryClient, chatId));
        const lastSeq = loaded.lastSeq;
        const response = await openStream(
          // `deltas`: text also arrives as the model writes it (transient events, no `seq`).
          `/api/v1/chats/${chatId}/stream?deltas=true`,
          lastSeq > 0 ? { "last-event-id": String(lastSeq) } : {},
          controller.signal,
        );
        if (this.stopped) return;
        onState("live");
        this.attempt = 0;
        await this.read(response, controller);
      } catch (error) {
        if (this.stopped) return;
        // A chat that is gone or a session that ended will not come back by retrying.
        if (error instanceof ApiError && (error.status === 401 || error.status === 404)) {
          onState("offline");
          return;
        }
      }
      if (this.stopped) return;
      if (this.movedAway) {
        // Asked to go: connect again in a moment, without showing a lost connection.
        this.movedAway = false;
        onState("connecting");
        await this.pause(MOVED_WAIT_MS);
        continue;
      }
      onState(navigator.onLine === false ? "offline" : "reconnecting");
      await this.pause(BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] ?? 10_000);
      this.attempt += 1;
    }
  }

  private async read(response: Response, controller: AbortController): Promise<void> {
    const body = response.body;
    if (!body) return;
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    const limit = this.options.silenceLimitMs ?? SILENCE_LIMIT_MS;
    let watchdog = setTimeout(() => controller.abort(), limit);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.stopped) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), limit);
        for (const message of parser.push(value)) {
          if (message.event === "reconnect") {
            this.movedAway = true;
            return;
          }
          if (message.data) this.receive(message.data);
        }
      }
    } finally {
      clearTimeout(watchdog);
      void reader.cancel().catch(() => undefined);
    }
  }

  private receive(data: string): void {
    let event: IncomingEvent;
    try {
      event = JSON.parse(data) as IncomingEvent;
    } catch {
      return;
    }
    const { queryClient, chatId } = this.options;
    const next = queryClient.setQueryData<Conversation>(this.key, (conversation) => applyEvent(conversation ?? emptyConversation, event));
    if (STATUS_EVENTS.has(event.type)) {
      void queryClient.invalidateQueries({ queryKey: chatKeys.list() });
      void queryClient.invalidateQueries({ queryKey: chatKeys.detail(chatId) });
      void queryClient.invalidateQueries({ queryKey: queueKeys.list(chatId) });
    }
    if (next && hasGap(next)) void this.resync();
  }

  /** Fills a gap from `GET .../messages`; the reducer then applies what it held back. */
  private resync(): Promise<void> {
    this.resyncing ??= loadConversation(this.options.queryClient, this.options.chatId)
      .then(() => undefined)
      .catch(() => {
        // The next reconnect asks the server for everything after the last applied event.
        this.reconnectNow();
      })
      .finally(() => {
        this.resyncing = null;
      });
    return this.resyncing;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}

