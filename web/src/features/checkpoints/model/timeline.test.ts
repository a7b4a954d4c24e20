import { describe, expect, it } from "vitest";
import { ApiError } from "@/shared/api/client";
import type { Conversation, MessageView } from "@/features/conversation/model/conversation";
import type { CheckpointInfo } from "../api/checkpoints";
import { abbreviate, changeWords, describeCheckpoint, entryName, failureText, formatCheckpointTime, timeline, turnsOf } from "./timeline";

function message(id: string, role: MessageView["role"], text = ""): MessageView {
  return {
    id,
    role,
    status: "completed",
    blocks: role === "user" ? [{ kind: "user", seq: 1, text }] : [{ kind: "text", seq: 2, text: "done", parent: null }],
    usage: null,
    costUsd: null,
    model: null,
    live: "", liveThinking: "",
  };
}

const conversation: Conversation = {
  lastSeq: 10,
  pending: [],
  messages: [message("u1", "user", "write a.txt please"), message("a1", "assistant"), message("u2", "user", "now b.txt"), message("a2", "assistant")],
};

function checkpoint(over: Partial<CheckpointInfo>): CheckpointInfo {
  return {
    id: "c",
    kind: "turn",
    message_id: null,
    created_at: "2030-05-01T10:00:00Z",
    files_added: 0,
    files_modified: 0,
    files_deleted: 0,
    bytes_added: 0,
    files: 0,
    bytes: 0,
    ...over,
  };
}

describe("turnsOf", () => {
  it("numbers the assistant messages and gives each the prompt before it", () => {
    const turns = turnsOf(conversation);
    expect(turns.get("a1")).toEqual({ number: 1, prompt: "write a.txt please" });
    expect(turns.get("a2")).toEqual({ number: 2, prompt: "now b.txt" });
    expect(turns.has("u1")).toBe(false);
  });

  it("knows no turns without a conversation", () => {
    expect(turnsOf(undefined).size).toBe(0);
  });
});

describe("abbreviate", () => {
  it("keeps short text and flattens whitespace", () => {
    expect(abbreviate("  fix\n the   bug ")).toBe("fix the bug");
  });

  it("cuts long text at a word with an ellipsis", () => {
    const text = "refactor the parser so that it handles nested quotes and escapes properly everywhere";
    const short = abbreviate(text, 40);
    expect(short.length).toBeLessThanOrEqual(40);
    expect(short.endsWith("…")).toBe(true);
    expect(text.startsWith(short.slice(0, -1))).toBe(true);
    expect(short).toBe("refactor the parser so that it handles…");
  });

  it("cuts a single long word where it must", () => {
    expect(abbreviate("x".repeat(100), 10)).toBe(`${"x".repeat(9)}…`);
  });
});

describe("describeCheckpoint", () => {
  const turns = turnsOf(conversation);

  it("says in words what a checkpoint changed", () => {
    expect(changeWords(1, 2, 0)).toBe("2 files changed, 1 added");
    expect(changeWords(1, 0, 0)).toBe("1 file added");
    expect(changeWords(0, 0, 4)).toBe("4 files deleted");
    expect(changeWords(0, 0, 0)).toBe("No files changed");
  });

  it("names a turn's checkpoint by its number and prompt and sums up the changes", () => {
    const entry = describeCheckpoint(
      checkpoint({ id: "k2", message_id: "a2", files_added: 1, files_modified: 2, files_deleted: 3, bytes_added: 2048, files: 5, bytes: 1536 }),
      turns,
      true,
    );
    expect(entry).toMatchObject({
      id: "k2",
      kind: "turn",
      title: "Turn 2",
      prompt: "now b.txt",
      changes: "2 files changed, 1 added, 3 deleted",
      changesLabel: "1 added, 2 modified, 3 deleted",
      added: "2.0 KiB",
      total: "5 files, 1.5 KiB",
      canFork: true,
      messageId: "a2",
    });
    expect(entryName(entry)).toBe("Turn 2 (“now b.txt”)");
  });

  it("labels an undo point and does not offer to fork it", () => {
    const entry = describeCheckpoint(checkpoint({ kind: "before_restore", message_id: "a2", files: 1 }), turns, true);
    expect(entry.title).toBe("Before restore (undo point)");
    expect(entry.total).toBe("1 file, 0 B");
    expect(entry.canFork).toBe(false);
  });

  it("labels a fork's first checkpoint", () => {
    const entry = describeCheckpoint(checkpoint({ kind: "fork" }), turns, true);
    expect(entry.title).toBe("Start of this fork");
    expect(entry.prompt).toBeNull();
    expect(entry.canFork).toBe(false);
  });

  it("says when a turn is no longer shown, but not before the conversation is known", () => {
    expect(describeCheckpoint(checkpoint({ message_id: "gone" }), turns, true).title).toBe("A turn no longer shown");
    expect(describeCheckpoint(checkpoint({ message_id: "gone" }), new Map(), false).title).toBe("Turn");
    // A hidden turn can still be forked: the server keeps its messages.
    expect(describeCheckpoint(checkpoint({ message_id: "gone" }), turns, true).canFork).toBe(true);
  });
});

describe("timeline", () => {
  it("puts the newest first and keeps the server's order for ties", () => {
    const list = timeline(
      [
        checkpoint({ id: "old", message_id: "a1", created_at: "2030-05-01T10:00:00Z" }),
        checkpoint({ id: "new", message_id: "a2", created_at: "2030-05-01T10:05:00Z" }),
        checkpoint({ id: "tie-a", kind: "before_restore", created_at: "2030-05-01T10:06:00Z" }),
        checkpoint({ id: "tie-b", kind: "before_restore", created_at: "2030-05-01T10:06:00Z" }),
      ],
      conversation,
    );
    expect(list.map((e) => e.id)).toEqual(["tie-a", "tie-b", "new", "old"]);
    expect(list.map((e) => e.title)).toEqual(["Before restore (undo point)", "Before restore (undo point)", "Turn 2", "Turn 1"]);
  });
});

describe("failureText", () => {
  it("explains a running turn", () => {
    expect(failureText(new ApiError(409, "turn_in_progress", "busy"), "restore")).toBe(
      "The restore failed: a turn is running in this chat. Wait for it to finish (or interrupt it), then try again.",
    );
  });

  it("passes the server's words on otherwise", () => {
    expect(failureText(new ApiError(422, "no_checkpoint", "That message has no checkpoint."), "fork")).toBe(
      "The fork failed: That message has no checkpoint.",
    );
    expect(failureText(new Error("boom"), "load")).toBe("The checkpoints could not be loaded: something went wrong.");
  });
});

describe("formatCheckpointTime", () => {
  it("shows only the time today and adds the date on another day", () => {
    const now = new Date(2030, 4, 1, 12, 0, 0);
    const today = formatCheckpointTime(new Date(2030, 4, 1, 9, 30, 15).toISOString(), now);
    const earlier = formatCheckpointTime(new Date(2030, 3, 20, 9, 30, 15).toISOString(), now);
    expect(earlier.short.length).toBeGreaterThan(today.short.length);
    expect(earlier.short.endsWith(today.short)).toBe(true);
  });

  it("shows what it got when it is not a date", () => {
    expect(formatCheckpointTime("soon").short).toBe("soon");
  });
});
