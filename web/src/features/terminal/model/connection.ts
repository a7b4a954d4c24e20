// One terminal's connection to its shell in the chat's sandbox, as a small state machine.
//
// The server keeps a shell for a minute after its WebSocket drops, and a client that comes
// back with `?session=<id>` in that time gets the same shell and its recent output. So a drop
// is not the end: the connection reconnects by itself with backoff and reattaches, and only
// when the shell is really gone does it open a new one and say so. A browser cannot see why a
// WebSocket upgrade failed (the HTTP status is hidden from scripts), so after a failed attempt
// it asks the API a plain question (the probe) to tell "offline" from "signed out", "the chat
// is gone" and "that shell has ended".

/** What the UI shows about the connection. */
export type TerminalStatus =
  | { kind: "connecting" }
  | { kind: "open" }
  | { kind: "reconnecting"; attempt: number }
  | { kind: "exited"; code: number | null }
  /** The same shell was opened in another tab or window, which took it over. */
  | { kind: "superseded" }
  | { kind: "failed"; message: string };

/** Things worth telling the user inside the terminal itself. */
export type TerminalNotice =
  | { kind: "reconnected" }
  /** The previous shell had ended while the connection was down; this is a new one. */
  | { kind: "new_shell" }
  | { kind: "error"; message: string };

/** The part of the browser's WebSocket this model uses (tests give it a fake). */
export interface SocketLike {
  binaryType: BinaryType;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number): void;
}

/** What the API says when asked after a failed attempt. */
export type ProbeResult = "ok" | "offline" | "unauthorized" | "gone";

export interface TerminalConnectionOptions {
  /** The WebSocket URL for a new shell (`cols`, `rows`) or a reattach (`session`); `null` when signed out. */
  url: (params: { session: string | null; cols: number; rows: number }) => Promise<string | null>;
  open: (url: string) => SocketLike;
  probe: () => Promise<ProbeResult>;
  /** A shell to reattach to first (kept across a reload). */
  sessionId?: string | null;
  onOutput: (data: Uint8Array) => void;
  /** The server is about to replay the shell's recent output: clear the screen for it. */
  onReset: () => void;
  onStatus: (status: TerminalStatus) => void;
  /** The shell this terminal is attached to changed (`null`: none), to be remembered. */
  onSession: (sessionId: string | null) => void;
  onNotice: (notice: TerminalNotice) => void;
  backoffMs?: readonly number[];
  /** How often to ask the server for a sign of life while connected. */
  pingEveryMs?: number;
  /** Silence after which a connection counts as dead (the server answers every ping). */
  silenceMs?: number;
}

/** The close code the server uses when the same shell is attached from elsewhere. */
export const CLOSE_ATTACHED_ELSEWHERE = 4000;
const BACKOFF_MS = [500, 1000, 2000, 5000, 10_000] as const;
/** Failed attempts at opening a new shell, while the API answers, before giving up. */
const MAX_OPEN_FAILURES = 3;

export const OPEN_FAILED_MESSAGE =
  "The terminal could not be opened. A chat can have 8 terminals at once, and a closed one keeps its place for a minute: close a tab or try again shortly.";

type ServerMessage =
  | { type: "session"; id: string; reconnected: boolean }
  | { type: "exit"; code: number | null }
  | { type: "error"; message: string }
  | { type: "pong" };

const encoder = new TextEncoder();

export class TerminalConnection {
  private socket: SocketLike | null = null;
  private sessionId: string | null;
  private status: TerminalStatus = { kind: "connecting" };
  private size = { cols: 80, rows: 24 };
  /** Whether the current socket got its `session` message (the shell is attached). */
  private attached = false;
  private attempt = 0;
  private openFailures = 0;
  private reattachFailures = 0;
  /** A shell was lost while disconnected; the next new one is announced as such. */
  private lostShell = false;
  private disposed = false;
  /** Bumped by every attempt, so that an attempt overtaken while it waited does nothing. */
  private generation = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private silenceTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: TerminalConnectionOptions) {
    this.sessionId = options.sessionId ?? null;
  }

  /** Connects with the terminal's first size: a new shell gets it from the start. */
  start(cols: number, rows: number): void {
    this.size = { cols, rows };
    void this.connect();
  }

  get current(): TerminalStatus {
    return this.status;
  }

  get session(): string | null {
    return this.sessionId;
  }

  /**
   * Keys typed into the terminal. While disconnected they are dropped rather than queued:
   * a command typed blind and run seconds later would surprise. After the shell exited,
   * Enter opens a new one.
   */
  input(data: string): void {
    if (this.socket && this.attached) {
      this.socket.send(encoder.encode(data));
    } else if (this.status.kind === "exited" && data.includes("\r")) {
      this.restart();
    }
  }

  resize(cols: number, rows: number): void {
    if (cols === this.size.cols && rows === this.size.rows) return;
    this.size = { cols, rows };
    this.sendResize();
  }

  /** Opens a new shell after the last one exited or could not be reached. */
  restart(): void {
    if (this.disposed) return;
    this.abandon();
    this.setSession(null);
    this.openFailures = 0;
    this.attempt = 0;
    this.lostShell = false;
    void this.connect();
  }

  /** Takes the shell back from the tab or window that took it over. */
  takeOver(): void {
    if (this.disposed || this.status.kind !== "superseded") return;
    this.attempt = 0;
    void this.connect();
  }

  /** The browser is back online: try now instead of waiting for the backoff. */
  reconnectNow(): void {
    if (this.disposed || this.status.kind !== "reconnecting") return;
    this.attempt = 0;
    this.clearRetry();
    void this.connect();
  }

  /** The browser went offline: an open socket may not notice for a long time, so drop it. */
  dropNow(): void {
    if (this.socket) this.lose(this.socket);
  }

  dispose(): void {
    this.disposed = true;
    this.clearRetry();
    this.abandon();
  }

  private setStatus(status: TerminalStatus): void {
    this.status = status;
    this.options.onStatus(status);
  }

  private setSession(id: string | null): void {
    if (id === this.sessionId) return;
    this.sessionId = id;
    this.options.onSession(id);
  }

  private async connect(): Promise<void> {
    if (this.disposed) return;
    this.clearRetry();
    this.setStatus(this.attempt === 0 && this.status.kind !== "reconnecting" ? { kind: "connecting" } : { kind: "reconnecting", attempt: this.attempt });
    const generation = ++this.generation;
    const url = await this.options.url({ session: this.sessionId, ...this.size });
    if (this.disposed || generation !== this.generation) return;
    if (!url) {
      this.setStatus({ kind: "failed", message: "Sign in to use the terminal." });
      return;
    }
    const socket = this.options.open(url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.attached = false;
    socket.onmessage = (event) => {
      if (socket === this.socket) this.receive(socket, event.data);
    };
    socket.onclose = (event) => {
      if (socket === this.socket) this.closed(socket, event.code);
    };
    this.armSilence(socket);
  }

  private receive(socket: SocketLike, data: unknown): void {
    this.armSilence(socket);
    // Binary frames arrive as ArrayBuffers (`binaryType`); the tag test also holds for one
    // made in another realm, where `instanceof` does not.
    if (Object.prototype.toString.call(data) === "[object ArrayBuffer]") {
      this.options.onOutput(new Uint8Array(data as ArrayBuffer));
      return;
    }
    if (typeof data !== "string") return;
    let message: ServerMessage;
    try {
      message = JSON.parse(data) as ServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case "session":
        this.attachedTo(socket, message.id, message.reconnected);
        break;
      case "exit":
        this.setSession(null);
        this.stopTimers();
        this.socket = null;
        this.attached = false;
        socket.onmessage = null;
        socket.onclose = null;
        socket.close(1000);
        this.setStatus({ kind: "exited", code: message.code ?? null });
        break;
      case "error":
        this.options.onNotice({ kind: "error", message: message.message });
        break;
      case "pong":
        break;
    }
  }

  private attachedTo(socket: SocketLike, id: string, reconnected: boolean): void {
    const wasReconnecting = this.status.kind === "reconnecting";
    this.attached = true;
    this.attempt = 0;
    this.openFailures = 0;
    this.reattachFailures = 0;
    if (reconnected) {
      // The replay that follows redraws the screen from the shell's recent output.
      this.options.onReset();
      if (wasReconnecting) this.options.onNotice({ kind: "reconnected" });
    } else if (this.lostShell) {
      this.lostShell = false;
      this.options.onNotice({ kind: "new_shell" });
    }
    this.setSession(id);
    this.setStatus({ kind: "open" });
    // A reattached shell still has the size of the window that last had it.
    if (reconnected) this.sendResize();
    this.pingTimer = setInterval(() => {
      if (socket === this.socket) socket.send(JSON.stringify({ type: "ping" }));
    }, this.options.pingEveryMs ?? 15_000);
  }

  private sendResize(): void {
    if (this.socket && this.attached) {
      this.socket.send(JSON.stringify({ type: "resize", ...this.size }));
    }
  }

  /** The socket closed by itself (or was given up on): decide what comes next. */
  private closed(socket: SocketLike, code: number): void {
    const wasAttached = this.attached;
    this.stopTimers();
    this.socket = null;
    this.attached = false;
    socket.onmessage = null;
    socket.onclose = null;
    if (this.disposed) return;
    if (code === CLOSE_ATTACHED_ELSEWHERE) {
      this.setStatus({ kind: "superseded" });
      return;
    }
    if (wasAttached) {
      this.scheduleRetry();
      return;
    }
    void this.afterFailedAttempt();
  }

  /** An attempt failed before the shell was attached: find out why from the API. */
  private async afterFailedAttempt(): Promise<void> {
    const result = await this.options.probe();
    if (this.disposed || this.socket) return;
    switch (result) {
      case "unauthorized":
        this.setStatus({ kind: "failed", message: "Your session has ended. Sign in again to use the terminal." });
        return;
      case "gone":
        this.setStatus({ kind: "failed", message: "This chat no longer exists." });
        return;
      case "offline":
        this.scheduleRetry();
        return;
      case "ok":
        break;
    }
    if (this.sessionId) {
      // The API answers, so the shell itself is most likely gone (a minute without a client,
      // or a server restart). One more try first: the token may just have been refreshed.
      this.reattachFailures += 1;
      if (this.reattachFailures >= 2) {
        this.reattachFailures = 0;
        this.setSession(null);
        this.lostShell = true;
      }
      void this.connect();
      return;
    }
    this.openFailures += 1;
    if (this.openFailures >= MAX_OPEN_FAILURES) {
      this.setStatus({ kind: "failed", message: OPEN_FAILED_MESSAGE });
      return;
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.attempt += 1;
    this.setStatus({ kind: "reconnecting", attempt: this.attempt });
    const backoff = this.options.backoffMs ?? BACKOFF_MS;
    const delay = backoff[Math.min(this.attempt - 1, backoff.length - 1)] ?? 10_000;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  /** Gives up on a socket that may be dead without knowing it, and carries on as after a drop. */
  private lose(socket: SocketLike): void {
    try {
      socket.close(1000);
    } catch {
      // Closing a socket that never opened may throw; it is abandoned either way.
    }
    this.closed(socket, 1006);
  }

  private armSilence(socket: SocketLike): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (socket === this.socket) this.lose(socket);
    }, this.options.silenceMs ?? 40_000);
  }

  private stopTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.pingTimer = null;
    this.silenceTimer = null;
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Closes the current socket without treating it as a drop. */
  private abandon(): void {
    const socket = this.socket;
    this.generation += 1;
    this.stopTimers();
    this.socket = null;
    this.attached = false;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      try {
        socket.close(1000);
      } catch {
        // Already closed.
      }
    }
  }
}
