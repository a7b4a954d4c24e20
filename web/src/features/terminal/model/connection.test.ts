import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CLOSE_ATTACHED_ELSEWHERE,
  OPEN_FAILED_MESSAGE,
  TerminalConnection,
  type ProbeResult,
  type SocketLike,
  type TerminalConnectionOptions,
  type TerminalNotice,
  type TerminalStatus,
} from "./connection";

/** A WebSocket stand-in that records what was sent and lets the test play the server. */
class FakeSocket implements SocketLike {
  binaryType: BinaryType = "blob";
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  sent: (string | Uint8Array)[] = [];
  closedWith: number | null = null;
  constructor(readonly url: string) {}
  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }
  close(code = 1000): void {
    this.closedWith = code;
  }
  /** The server's side. */
  control(message: object): void {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify(message) }));
  }
  output(text: string): void {
    this.onmessage?.(new MessageEvent("message", { data: new TextEncoder().encode(text).buffer }));
  }
  drop(code = 1006): void {
    this.onclose?.(new CloseEvent("close", { code }));
  }
  controls(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === "string").map((s) => JSON.parse(s) as Record<string, unknown>);
  }
  typed(): string {
    return this.sent.filter((s): s is Uint8Array => typeof s !== "string").map((s) => new TextDecoder().decode(s)).join("");
  }
}

function harness(overrides: Partial<TerminalConnectionOptions> = {}) {
  const sockets: FakeSocket[] = [];
  const statuses: TerminalStatus[] = [];
  const notices: TerminalNotice[] = [];
  const sessions: (string | null)[] = [];
  const output: string[] = [];
  let resets = 0;
  let probe: ProbeResult = "ok";
  const connection = new TerminalConnection({
    url: async ({ session, cols, rows }) => (session ? `ws://x/terminal?session=${session}` : `ws://x/terminal?cols=${cols}&rows=${rows}`),
    open: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    probe: async () => probe,
    onOutput: (data) => output.push(new TextDecoder().decode(data)),
    onReset: () => {
      resets += 1;
    },
    onStatus: (status) => statuses.push(status),
    onSession: (id) => sessions.push(id),
    onNotice: (notice) => notices.push(notice),
    backoffMs: [100, 200],
    pingEveryMs: 1000,
    silenceMs: 3000,
    ...overrides,
  });
  return {
    connection,
    sockets,
    statuses,
    notices,
    sessions,
    output,
    resets: () => resets,
    setProbe: (next: ProbeResult) => {
      probe = next;
    },
    last: () => {
      const socket = sockets.at(-1);
      if (!socket) throw new Error("no socket was opened");
      return socket;
    },
    status: () => connection.current,
  };
}

/** Lets the promises of an attempt (the URL, the probe) settle, and runs due timers. */
const settle = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("a terminal connection", () => {
  it("opens a new shell with the terminal's size, passes data both ways and sends resizes", async () => {
    const t = harness();
    t.connection.start(120, 40);
    await settle();
    expect(t.last().url).toBe("ws://x/terminal?cols=120&rows=40");
    expect(t.last().binaryType).toBe("arraybuffer");
    expect(t.status()).toEqual({ kind: "connecting" });

    // Keys typed before the shell is attached go nowhere.
    t.connection.input("lost");
    t.last().control({ type: "session", id: "s1", reconnected: false });
    expect(t.status()).toEqual({ kind: "open" });
    expect(t.sessions).toEqual(["s1"]);
    expect(t.resets()).toBe(0);

    t.last().output("$ ");
    t.connection.input("echo hi\r");
    t.connection.resize(100, 30);
    t.connection.resize(100, 30);
    expect(t.output).toEqual(["$ "]);
    expect(t.last().typed()).toBe("echo hi\r");
    expect(t.last().controls()).toEqual([{ type: "resize", cols: 100, rows: 30 }]);
    expect(t.notices).toEqual([]);
  });

  it("reconnects by itself after a drop and reattaches to the same shell, replaying its screen", async () => {
    const t = harness();
    t.connection.start(80, 24);
    await settle();
    t.last().control({ type: "session", id: "s1", reconnected: false });
    t.connection.resize(90, 20);
    t.last().drop();
    expect(t.status()).toEqual({ kind: "reconnecting", attempt: 1 });
    expect(t.sockets).toHaveLength(1);

    await settle(100);
    expect(t.sockets).toHaveLength(2);
    expect(t.last().url).toBe("ws://x/terminal?session=s1");
    t.last().control({ type: "session", id: "s1", reconnected: true });
    t.last().output("replayed screen");
    expect(t.resets()).toBe(1);
    expect(t.notices).toEqual([{ kind: "reconnected" }]);
    expect(t.status()).toEqual({ kind: "open" });
    // The shell learns this window's size again.
    expect(t.last().controls()).toEqual([{ type: "resize", cols: 90, rows: 20 }]);
    expect(t.output).toEqual(["replayed screen"]);
    expect(t.sessions).toEqual(["s1"]);
  });

  it("reattaches to a shell remembered across a reload without calling it a reconnect", async () => {
    const t = harness({ sessionId: "kept" });
    t.connection.start(80, 24);
    await settle();
    expect(t.last().url).toBe("ws://x/terminal?session=kept");
    t.last().control({ type: "session", id: "kept", reconnected: true });
    expect(t.resets()).toBe(1);
    expect(t.notices).toEqual([]);
  });

  it("opens a new shell and says so when the old one is gone", async () => {
    const t = harness({ sessionId: "gone" });
    t.connection.start(80, 24);
    await settle();
    // The upgrade is refused (404 terminal_not_found) while the API answers: tried once
    // more (the token may have been stale), then given up.
    t.last().drop();
    await settle();
    expect(t.last().url).toBe("ws://x/terminal?session=gone");
    t.last().drop();
    await settle();
    expect(t.sockets).toHaveLength(3);
    expect(t.last().url).toBe("ws://x/terminal?cols=80&rows=24");
    expect(t.sessions).toEqual([null]);
    t.last().control({ type: "session", id: "fresh", reconnected: false });
    expect(t.notices).toEqual([{ kind: "new_shell" }]);
    expect(t.sessions).toEqual([null, "fresh"]);
    expect(t.resets()).toBe(0);
  });

  it("keeps the shell and backs off while the server cannot be reached", async () => {
    const t = harness();
    t.connection.start(80, 24);
    await settle();
    t.last().control({ type: "session", id: "s1", reconnected: false });
    t.setProbe("offline");
    t.last().drop();
    await settle(100);
    t.last().drop();
    await settle();
    expect(t.status()).toEqual({ kind: "reconnecting", attempt: 2 });
    await settle(199);
    expect(t.sockets).toHaveLength(2);
    await settle(1);
    expect(t.sockets).toHaveLength(3);
    expect(t.last().url).toBe("ws://x/terminal?session=s1");
    t.setProbe("ok");
    t.last().control({ type: "session", id: "s1", reconnected: true });
    expect(t.notices).toEqual([{ kind: "reconnected" }]);
  });

  it("stops when the shell exits and opens a new one on Enter", async () => {
    const t = harness();
    t.connection.start(80, 24);
    await settle();
    const first = t.last();
    first.control({ type: "session", id: "s1", reconnected: false });
    first.control({ type: "exit", code: 3 });
    expect(t.status()).toEqual({ kind: "exited", code: 3 });
    expect(first.closedWith).toBe(1000);
    expect(t.sessions).toEqual(["s1", null]);
    first.drop(1000);
    await settle(10_000);
    expect(t.sockets).toHaveLength(1);

    t.connection.input("x");
    await settle();
    expect(t.sockets).toHaveLength(1);
    t.connection.input("\r");
    await settle();
    expect(t.sockets).toHaveLength(2);
    expect(t.last().url).toBe("ws://x/terminal?cols=80&rows=24");
    t.last().control({ type: "session", id: "s2", reconnected: false });
    expect(t.notices).toEqual([]);
    expect(t.status()).toEqual({ kind: "open" });
  });

  it("lets another window take the shell over and takes it back on request", async () => {
    const t = harness();
    t.connection.start(80, 24);
    await settle();
    t.last().control({ type: "session", id: "s1", reconnected: false });
    t.last().drop(CLOSE_ATTACHED_ELSEWHERE);
    expect(t.status()).toEqual({ kind: "superseded" });
    await settle(10_000);
    expect(t.sockets).toHaveLength(1);
    t.connection.takeOver();
    await settle();
    expect(t.sockets).toHaveLength(2);
    expect(t.last().url).toBe("ws://x/terminal?session=s1");
  });

  it("gives up with a clear message when the session ended, the chat is gone or no shell can be opened", async () => {
    const signedOut = harness();
    signedOut.setProbe("unauthorized");
    signedOut.connection.start(80, 24);
    await settle();
    signedOut.last().drop();
    await settle(10_000);
    expect(signedOut.status()).toMatchObject({ kind: "failed", message: expect.stringContaining("Sign in again") });
    expect(signedOut.sockets).toHaveLength(1);

    const gone = harness();
    gone.setProbe("gone");
    gone.connection.start(80, 24);
    await settle();
    gone.last().drop();
    await settle();
    expect(gone.status()).toEqual({ kind: "failed", message: "This chat no longer exists." });

    // The API answers, but the upgrade keeps failing (too many terminals, say).
    const full = harness();
    full.connection.start(80, 24);
    await settle();
    for (let i = 0; i < 3; i += 1) {
      full.last().drop();
      await settle(1000);
    }
    expect(full.status()).toEqual({ kind: "failed", message: OPEN_FAILED_MESSAGE });
    expect(full.sockets).toHaveLength(3);
    full.connection.restart();
    await settle();
    expect(full.sockets).toHaveLength(4);
    expect(full.status()).toEqual({ kind: "connecting" });
  });

  it("pings while attached and treats a silent connection as dropped", async () => {
    const t = harness();
    t.connection.start(80, 24);
    await settle();
    t.last().control({ type: "session", id: "s1", reconnected: false });
    await settle(1000);
    expect(t.last().controls()).toEqual([{ type: "ping" }]);
    t.last().control({ type: "pong" });
    await settle(2999);
    expect(t.status()).toEqual({ kind: "open" });
    await settle(1);
    expect(t.status()).toEqual({ kind: "reconnecting", attempt: 1 });
    expect(t.sockets[0]?.closedWith).toBe(1000);
    await settle(100);
    expect(t.last().url).toBe("ws://x/terminal?session=s1");
  });

  it("shows the server's error messages and ignores anything after it is disposed", async () => {
    const t = harness();
    t.connection.start(80, 24);
    await settle();
    const socket = t.last();
    socket.control({ type: "session", id: "s1", reconnected: false });
    socket.control({ type: "error", message: "cols and rows must be between 1 and 1000" });
    expect(t.notices).toEqual([{ kind: "error", message: "cols and rows must be between 1 and 1000" }]);
    t.connection.dispose();
    expect(socket.closedWith).toBe(1000);
    socket.drop();
    await settle(10_000);
    expect(t.sockets).toHaveLength(1);
  });
});
