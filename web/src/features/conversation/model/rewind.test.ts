import { describe, expect, it } from "vitest";
import type { CheckpointInfo } from "@/shared/api/types";
import type { MessageView } from "./conversation";
import { checkpointBeforePrompt, checkpointOfTurn, promptText, turnBefore } from "./rewind";

const message = (id: string, role: MessageView["role"], text = ""): MessageView => ({
  id,
  role,
  status: "completed",
  blocks: role === "user" ? [{ kind: "user", seq: 1, text }] : [],
  usage: null,
  costUsd: null,
  model: null,
  live: "",
  liveThinking: "",
});

const checkpoint = (id: string, messageId: string | null, kind: string, createdAt: string): CheckpointInfo => ({
  id,
  message_id: messageId,
  kind,
  created_at: createdAt,
  files_added: 0,
  files_modified: 0,
  files_deleted: 0,
  bytes_added: 0,
  files: 0,
  bytes: 0,
});

const messages = [message("u1", "user", "one"), message("a1", "assistant"), message("u2", "user", "two"), message("a2", "assistant")];
const checkpoints = [
  checkpoint("c-undo", "a1", "before_restore", "2025-01-01T10:05:00Z"),
  checkpoint("c2", "a2", "turn", "2025-01-01T10:02:00Z"),
  checkpoint("c1", "a1", "turn", "2025-01-01T10:01:00Z"),
];

describe("rewinding", () => {
  it("finds a turn's own checkpoint, not an undo point that names the same message", () => {
    expect(checkpointOfTurn(checkpoints, "a1")?.id).toBe("c1");
    expect(checkpointOfTurn(checkpoints, "a2")?.id).toBe("c2");
    expect(checkpointOfTurn(checkpoints, "a3")).toBeNull();
  });

  it("edits a prompt from the checkpoint of the turn before it", () => {
    expect(turnBefore(messages, "u2")?.id).toBe("a1");
    expect(checkpointBeforePrompt(checkpoints, messages, "u2")?.id).toBe("c1");
  });

  it("has nothing to go back to before the first prompt", () => {
    expect(turnBefore(messages, "u1")).toBeNull();
    expect(checkpointBeforePrompt(checkpoints, messages, "u1")).toBeNull();
  });

  it("reads a prompt's text", () => {
    expect(promptText(messages[2] as MessageView)).toBe("two");
  });
});
