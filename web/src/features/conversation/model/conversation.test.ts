import { describe, expect, it } from "vitest";
import type { ChatEvent, Message } from "@/shared/api/types";
import { applyEvent, emptyConversation, fromMessages, hasGap, mergeSnapshot, runningMessage, type Conversation, type IncomingEvent } from "./conversation";

const USER = "00000000-0000-0000-0000-00000000000a";
const ASSISTANT = "00000000-0000-0000-0000-00000000000b";
const at = "2026-01-01T00:00:00Z";

/** The events of one turn with a thinking block, a Bash call and a final text, in order. */
function turn(): ChatEvent[] {
  return [
    { seq: 1, message_id: USER, created_at: at, type: "user_text", text: "hi [[bash:echo hi]]" },
    { seq: 2, message_id: ASSISTANT, created_at: at, type: "system", subtype: "init", session_id: "s" },
    { seq: 3, message_id: ASSISTANT, created_at: at, type: "assistant_thinking", thinking: "Considering." },
    { seq: 4, message_id: ASSISTANT, created_at: at, type: "tool_started", tool: { id: "t1", name: "Bash", input: { command: "echo hi" } } },
    { seq: 5, message_id: ASSISTANT, created_at: at, type: "tool_completed", tool: { id: "t1", result: "hi" } },
    { seq: 6, message_id: ASSISTANT, created_at: at, type: "assistant_text", text: "Done." },
    { seq: 7, message_id: ASSISTANT, created_at: at, type: "usage", input_tokens: 10, output_tokens: 5, total_cost_usd: 0.01 },
    { seq: 8, message_id: ASSISTANT, created_at: at, type: "message_completed", status: "completed", total_cost_usd: 0.01 },
  ];
}

function applyAll(events: IncomingEvent[], start: Conversation = emptyConversation): Conversation {
  return events.reduce(applyEvent, start);
}

function kinds(conversation: Conversation): string[] {
  return conversation.messages.flatMap((m) => m.blocks.map((b) => `${m.role}:${b.kind}`));
}

describe("the stream reducer", () => {
  it("applies a turn's events in order", () => {
    const conversation = applyAll(turn());
    expect(conversation.lastSeq).toBe(8);
    expect(kinds(conversation)).toEqual(["user:user", "assistant:system", "assistant:thinking", "assistant:tool", "assistant:text"]);
    const assistant = conversation.messages[1];
    expect(assistant?.status).toBe("completed");
    expect(assistant?.costUsd).toBe(0.01);
    expect(assistant?.usage?.output_tokens).toBe(5);
    const tool = assistant?.blocks.find((b) => b.kind === "tool");
    expect(tool).toMatchObject({ name: "Bash", state: "completed", output: "hi", input: { command: "echo hi" } });
    expect(hasGap(conversation)).toBe(false);
  });

  it("ignores duplicates, such as a replay after a reconnect", () => {
    const events = turn();
    const once = applyAll(events);
    const twice = applyAll([...events.slice(0, 5), ...events.slice(2)]);
    expect(twice).toEqual(once);
    // Applying an old event again returns the very same object: nothing re-renders.
    expect(applyEvent(once, events[3] as ChatEvent)).toBe(once);
  });

  it("holds events after a gap until the missing ones arrive", () => {
    const events = turn();
    let conversation = applyAll(events.slice(0, 3));
    conversation = applyAll([events[4], events[6]] as ChatEvent[], conversation);
    expect(conversation.lastSeq).toBe(3);
    expect(hasGap(conversation)).toBe(true);
    expect(conversation.pending.map((e) => e.seq)).toEqual([5, 7]);
    // A duplicate of a held event is held once.
    conversation = applyEvent(conversation, events[4] as ChatEvent);
    expect(conversation.pending).toHaveLength(2);

    conversation = applyEvent(conversation, events[3] as ChatEvent);
    expect(conversation.lastSeq).toBe(5);
    expect(conversation.pending.map((e) => e.seq)).toEqual([7]);
    conversation = applyAll([events[5], events[7]] as ChatEvent[], conversation);
    expect(conversation.lastSeq).toBe(8);
    expect(hasGap(conversation)).toBe(false);
    expect(conversation).toEqual(applyAll(events));
  });

  it("fills a gap from a refetched snapshot and applies what was held", () => {
    const events = turn();
    const streamed = applyAll([...events.slice(0, 2), events[5], events[6]] as ChatEvent[]);
    expect(hasGap(streamed)).toBe(true);
    const snapshot = fromMessages(messagesOf(events.slice(0, 5)));
    const merged = mergeSnapshot(streamed, snapshot);
    expect(merged.lastSeq).toBe(7);
    expect(hasGap(merged)).toBe(false);
    expect(kinds(merged)).toEqual(kinds(applyAll(events.slice(0, 7))));
  });

  it("keeps the stream's state when a snapshot is older", () => {
    const events = turn();
    const streamed = applyAll(events);
    const merged = mergeSnapshot(streamed, fromMessages(messagesOf(events.slice(0, 4))));
    expect(merged.lastSeq).toBe(8);
    expect(kinds(merged)).toEqual(kinds(streamed));
  });

  it("builds the same conversation from GET messages as from the stream", () => {
    const events = turn();
    const fromList = fromMessages(messagesOf(events));
    const fromStream = applyAll(events);
    expect(kinds(fromList)).toEqual(kinds(fromStream));
    expect(fromList.lastSeq).toBe(fromStream.lastSeq);
  });

  it("shows transient text deltas until the durable text replaces them", () => {
    const events = turn();
    let conversation = applyAll(events.slice(0, 5));
    conversation = applyEvent(conversation, { type: "assistant_text_delta", message_id: ASSISTANT, text: "Do" });
    conversation = applyEvent(conversation, { type: "assistant_text_delta", message_id: ASSISTANT, text: "ne" });
    expect(conversation.messages[1]?.live).toBe("Done");
    expect(conversation.lastSeq).toBe(5);
    conversation = applyEvent(conversation, events[5] as ChatEvent);
    expect(conversation.messages[1]?.live).toBe("");
    expect(conversation.messages[1]?.blocks.at(-1)).toMatchObject({ kind: "text", text: "Done." });
  });

  it("shows thinking as it streams until the durable thinking block replaces it", () => {
    const events = turn();
    let conversation = applyAll(events.slice(0, 2));
    conversation = applyEvent(conversation, { type: "assistant_thinking_delta", message_id: ASSISTANT, text: "Let me " });
    conversation = applyEvent(conversation, { type: "assistant_thinking_delta", message_id: ASSISTANT, text: "look." });
    expect(conversation.messages[1]?.liveThinking).toBe("Let me look.");
    expect(conversation.lastSeq).toBe(2);
    conversation = applyEvent(conversation, { seq: 3, message_id: ASSISTANT, created_at: at, type: "assistant_thinking", thinking: "Let me look." } as ChatEvent);
    expect(conversation.messages[1]?.liveThinking).toBe("");
    expect(conversation.messages[1]?.blocks.at(-1)).toMatchObject({ kind: "thinking", thinking: "Let me look." });
  });

  it("knows whether a turn is running", () => {
    const events = turn();
    expect(runningMessage(applyAll(events.slice(0, 4)))?.id).toBe(ASSISTANT);
    expect(runningMessage(applyAll(events))).toBeUndefined();
  });

  it("shows failed tools and errors", () => {
    const conversation = applyAll([
      { seq: 1, message_id: ASSISTANT, created_at: at, type: "tool_started", tool: { id: "t", name: "Write", input: { file_path: "a" } } },
      { seq: 2, message_id: ASSISTANT, created_at: at, type: "tool_failed", tool: { id: "t", error: "denied" } },
      { seq: 3, message_id: ASSISTANT, created_at: at, type: "error", message: "The model API failed.", code: "model_error" },
      { seq: 4, message_id: ASSISTANT, created_at: at, type: "message_completed", status: "failed" },
    ]);
    const blocks = conversation.messages[0]?.blocks;
    expect(blocks?.[0]).toMatchObject({ kind: "tool", state: "failed", output: "denied" });
    expect(blocks?.[1]).toMatchObject({ kind: "error", code: "model_error" });
    expect(conversation.messages[0]?.status).toBe("failed");
  });
});

/** The messages `GET .../messages` would return for these events. */
function messagesOf(events: ChatEvent[]): Message[] {
  const ids = [...new Set(events.map((e) => e.message_id))];
  return ids.map((id) => {
    const content = events.filter((e) => e.message_id === id);
    const completed = content.find((e) => e.type === "message_completed");
    return {
      id,
      chat_id: "c",
      role: id === USER ? "user" : "assistant",
      status: id === USER ? "completed" : completed?.type === "message_completed" ? completed.status : "in_progress",
      content,
      created_at: at,
    };
  });
}

describe("a restore (system/rewind)", () => {
  const U2 = "00000000-0000-0000-0000-00000000000c";
  const A2 = "00000000-0000-0000-0000-00000000000d";
  const second: ChatEvent[] = [
    { seq: 9, message_id: U2, created_at: at, type: "user_text", text: "more" },
    { seq: 10, message_id: A2, created_at: at, type: "message_completed", status: "completed" },
  ];

  it("takes the undone turns out of the conversation without a refetch", () => {
    const before = applyAll([...turn(), ...second]);
    const rewind: ChatEvent = { seq: 11, message_id: ASSISTANT, created_at: at, type: "system", subtype: "rewind", checkpoint_id: "k", hidden_message_ids: [U2, A2], shown_message_ids: [] };
    const after = applyEvent(before, rewind);
    expect(after.messages.map((m) => m.id)).toEqual([USER, ASSISTANT]);
    expect(after.lastSeq).toBe(11);
    expect(hasGap(after)).toBe(false);
  });

  it("asks for a refetch when turns it does not have are shown again, and the snapshot settles it", () => {
    const before = applyAll(turn());
    const rewind: ChatEvent = { seq: 11, message_id: ASSISTANT, created_at: at, type: "system", subtype: "rewind", checkpoint_id: "k", hidden_message_ids: [], shown_message_ids: [U2, A2] };
    const after = applyEvent({ ...before, lastSeq: 10 }, rewind);
    expect(hasGap(after)).toBe(true);
    const snapshot = fromMessages(messagesOf([...turn(), ...second, rewind]));
    const merged = mergeSnapshot(after, snapshot);
    expect(hasGap(merged)).toBe(false);
    expect(merged.messages.map((m) => m.id)).toEqual([USER, ASSISTANT, U2, A2]);
  });
});
