import { describe, expect, it } from "vitest";
import type { Block, MessageView } from "./conversation";
import { activity, announcement, formatElapsed } from "./live";

const turn = (blocks: Block[], extra: Partial<MessageView> = {}): MessageView => ({
  id: "a",
  role: "assistant",
  status: "in_progress",
  blocks,
  usage: null,
  costUsd: null,
  model: null,
  live: "",
  liveThinking: "",
  ...extra,
});

const bash = (seq: number, command: string, state: "running" | "completed" = "running"): Block => ({ kind: "tool", seq, id: `t${seq}`, name: "Bash", input: { command }, state, output: null, parent: null });

describe("a running turn's activity", () => {
  it("thinks until something happens", () => {
    expect(activity(turn([]))).toBe("Thinking…");
    expect(activity(turn([bash(1, "ls", "completed")]))).toBe("Thinking…");
  });

  it("names the command or file being worked on", () => {
    expect(activity(turn([bash(1, "npm test")]))).toBe("Running `npm test`…");
    expect(activity(turn([{ kind: "tool", seq: 1, id: "e", name: "Edit", input: { file_path: "/home/user/src/app.py" }, state: "running", output: null, parent: null }]))).toBe("Editing app.py…");
  });

  it("says it writes while text streams, and waits while a request is open", () => {
    expect(activity(turn([], { live: "Hel" }))).toBe("Writing the reply…");
    const request: Block = {
      kind: "permission", seq: 2, requestId: "r", request: "tool", toolUseId: "t1", toolName: "Bash", input: {}, description: null, reason: null, plan: null, expiresAt: null, resolved: null,
    };
    expect(activity(turn([bash(1, "curl x"), request]))).toBe("Waiting for your answer…");
  });

  it("counts a retried model call", () => {
    expect(activity(turn([{ kind: "system", seq: 1, subtype: "api_retry", details: { attempt: 2, error_status: 429 } }]))).toBe("The model API is rate-limiting this server; retrying (attempt 2)…");
  });
});

describe("elapsed time", () => {
  it("reads like a clock", () => {
    expect(formatElapsed(7_400)).toBe("0:07");
    expect(formatElapsed(125_000)).toBe("2:05");
    expect(formatElapsed(3_725_000)).toBe("1:02:05");
    expect(formatElapsed(-5)).toBe("0:00");
  });
});

describe("announcements", () => {
  it("reads the start of a finished reply, and how a turn ended otherwise", () => {
    const text: Block = { kind: "text", seq: 1, text: "Done:\n all   tests pass.", parent: null };
    expect(announcement(turn([text], { status: "completed" }))).toBe("The agent replied: Done: all tests pass.");
    expect(announcement(turn([], { status: "failed" }))).toBe("The turn failed.");
    expect(announcement(turn([], { status: "interrupted" }))).toBe("The turn was stopped.");
    expect(announcement(turn([text]))).toBeNull();
  });
});
