// The conversation of one chat as the UI shows it, and the reducer that keeps it current from
// chat events. This is the heart of "live and resilient": the chat's events carry a `seq` that
// increases by exactly one per event, so the reducer applies an event only when it is the next
// one, ignores any it has already applied (a replay after a reconnect), and holds back events
// that arrive after a gap until the missing ones have been refetched.
import type { ChatEvent, Message, MessageStatus, PermissionKind, PermissionMode, ResolvedBy, TransientEvent, Usage } from "@/shared/api/types";

/** How a permission request ended, as its `permission_resolved` event says. */
export interface PermissionOutcome {
  approved: boolean;
  message: string | null;
  by: ResolvedBy | null;
  answers: Record<string, unknown> | null;
  mode: PermissionMode | null;
}

export type ToolState = "running" | "completed" | "failed";

export type Block =
  | { kind: "user"; seq: number; text: string }
  | { kind: "text"; seq: number; text: string; parent: string | null }
  | { kind: "thinking"; seq: number; thinking: string; parent: string | null }
  | {
      kind: "tool";
      seq: number;
      id: string;
      name: string;
      input: Record<string, unknown>;
      state: ToolState;
      output: string | null;
      parent: string | null;
      /** When the call started and ended (the events' times), for its duration. */
      startedAt?: string | null;
      endedAt?: string | null;
    }
  | {
      kind: "permission";
      seq: number;
      requestId: string;
      /** `tool` (may this call run?), `question` (AskUserQuestion) or `plan` (ExitPlanMode). */
      request: PermissionKind;
      /** The tool call it is about, when the CLI said. */
      toolUseId: string | null;
      toolName: string;
      input: Record<string, unknown>;
      description: string | null;
      reason: string | null;
      plan: string | null;
      expiresAt: string | null;
      resolved: PermissionOutcome | null;
    }
  | { kind: "system"; seq: number; subtype: string; details: Record<string, unknown> }
  | { kind: "error"; seq: number; message: string; code: string | null };

export interface MessageView {
  id: string;
  role: "user" | "assistant";
  status: MessageStatus;
  blocks: Block[];
  usage: Usage | null;
  costUsd: number | null;
  model: string | null;
  /**
   * Text that arrived as transient deltas (`assistant_text_delta`, events without a `seq`)
   * and is not yet confirmed by its durable `assistant_text` event, which replaces it.
   */
  live: string;
  /**
   * Thinking that arrived as transient deltas (`assistant_thinking_delta`), until its durable
   * `assistant_thinking` event replaces it.
   */
  liveThinking: string;
  /** When the message's first event was written: a running turn's clock starts there. */
  startedAt?: string | null;
}

export interface Conversation {
  /** The `seq` of the last event applied; the stream resumes after it (`Last-Event-ID`). */
  lastSeq: number;
  messages: MessageView[];
  /** Events that came after a gap, held until the events before them are known. */
  pending: ChatEvent[];
  /**
   * Set when an event says that messages this client does not have became visible again (a
   * restore that shows undone turns): the conversation must be refetched.
   */
  stale?: boolean;
}

/** A transient event (see the server's `TransientEvent`): no `seq`, shown until its durable event replaces it. */
export type { TransientEvent };

export type IncomingEvent = ChatEvent | TransientEvent;

export const emptyConversation: Conversation = { lastSeq: 0, messages: [], pending: [] };

function isTransient(event: IncomingEvent): event is TransientEvent {
  return typeof (event as { seq?: unknown }).seq !== "number";
}

function newMessage(id: string, role: MessageView["role"]): MessageView {
  return { id, role, status: role === "user" ? "completed" : "in_progress", blocks: [], usage: null, costUsd: null, model: null, live: "", liveThinking: "" };
}

function objectOf(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Applies one durable event to its message (which the caller has already copied). */
function applyToMessage(message: MessageView, event: ChatEvent): void {
  const parent = event.parent_tool_use_id ?? null;
  const { seq } = event;
  message.startedAt ??= event.created_at;
  switch (event.type) {
    case "user_text":
      message.blocks.push({ kind: "user", seq, text: event.text });
      break;
    case "assistant_text":
      message.blocks.push({ kind: "text", seq, text: event.text, parent });
      message.live = "";
      break;
    case "assistant_thinking":
      message.blocks.push({ kind: "thinking", seq, thinking: event.thinking, parent });
      if (parent === null) message.liveThinking = "";
      break;
    case "tool_started":
      message.blocks.push({
        kind: "tool",
        seq,
        id: event.tool.id,
        name: event.tool.name,
        input: objectOf(event.tool.input),
        state: "running",
        output: null,
        parent,
        startedAt: event.created_at,
        endedAt: null,
      });
      break;
    case "tool_completed":
    case "tool_failed": {
      const output = event.type === "tool_completed" ? event.tool.result : event.tool.error;
      const state: ToolState = event.type === "tool_completed" ? "completed" : "failed";
      const index = message.blocks.findLastIndex((b) => b.kind === "tool" && b.id === event.tool.id);
      const block = message.blocks[index];
      if (block?.kind === "tool") {
        message.blocks[index] = { ...block, state, output, endedAt: event.created_at };
      } else {
        // A result whose call this client never saw still deserves to be shown.
        message.blocks.push({ kind: "tool", seq, id: event.tool.id, name: "tool", input: {}, state, output, parent, startedAt: null, endedAt: event.created_at });
      }
      break;
    }
    case "permission_request":
      message.blocks.push({
        kind: "permission",
        seq,
        requestId: event.request_id,
        request: event.kind ?? "tool",
        toolUseId: event.tool_use_id ?? null,
        toolName: event.tool_name,
        input: objectOf(event.input),
        description: event.description ?? null,
        reason: event.reason ?? null,
        plan: event.plan ?? null,
        expiresAt: event.expires_at ?? null,
        resolved: null,
      });
      break;
    case "permission_resolved": {
      const index = message.blocks.findLastIndex((b) => b.kind === "permission" && b.requestId === event.request_id);
      const block = message.blocks[index];
      if (block?.kind === "permission") {
        const resolved: PermissionOutcome = {
          approved: event.approved,
          message: event.message ?? null,
          by: event.resolved_by ?? null,
          answers: event.answers ?? null,
          mode: event.mode ?? null,
        };
        message.blocks[index] = { ...block, resolved };
      }
      break;
    }
    case "system": {
      const { type: _type, seq: _seq, message_id: _m, created_at: _c, parent_tool_use_id: _p, subtype, ...details } = event;
      message.blocks.push({ kind: "system", seq, subtype, details });
      break;
    }
    case "usage": {
      const { type: _type, seq: _seq, message_id: _m, created_at: _c, parent_tool_use_id: _p, ...usage } = event;
      message.usage = usage;
      if (usage.total_cost_usd != null) message.costUsd = usage.total_cost_usd;
      break;
    }
    case "message_completed":
      message.status = event.status;
      if (event.total_cost_usd != null) message.costUsd = event.total_cost_usd;
      message.live = "";
      message.liveThinking = "";
      break;
    case "error":
      message.blocks.push({ kind: "error", seq, message: event.message, code: event.code ?? null });
      break;
  }
}

/** The messages with the one `id` names copied (or added) so that it can be changed. */
function withMessage(messages: MessageView[], id: string, role: MessageView["role"]): [MessageView[], MessageView] {
  const index = messages.findIndex((m) => m.id === id);
  const next = messages.slice();
  if (index === -1) {
    const message = newMessage(id, role);
    next.push(message);
    return [next, message];
  }
  const source = messages[index] as MessageView;
  const copy = { ...source, blocks: source.blocks.slice() };
  next[index] = copy;
  return [next, copy];
}

function idsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function applyInOrder(conversation: Conversation, event: ChatEvent): Conversation {
  const role = event.type === "user_text" ? "user" : "assistant";
  const [messages, message] = withMessage(conversation.messages, event.message_id, role);
  applyToMessage(message, event);
  if (event.type === "system" && event.subtype === "rewind") {
    // A restore: the undone turns leave the conversation (the server keeps them); turns it
    // shows again are not known here, so the conversation is refetched.
    const hidden = new Set(idsOf((event as Record<string, unknown>).hidden_message_ids));
    const shown = idsOf((event as Record<string, unknown>).shown_message_ids);
    return {
      ...conversation,
      lastSeq: event.seq,
      messages: messages.filter((m) => !hidden.has(m.id)),
      stale: conversation.stale || shown.length > 0,
    };
  }
  return { ...conversation, lastSeq: event.seq, messages };
}

/** Applies held-back events that have become next in line; drops any already applied. */
function drain(conversation: Conversation): Conversation {
  let current = conversation;
  let pending = current.pending.filter((e) => e.seq > current.lastSeq);
  while (pending[0] && pending[0].seq === current.lastSeq + 1) {
    current = applyInOrder(current, pending[0]);
    pending = pending.slice(1);
  }
  return { ...current, pending };
}

/**
 * Applies one event. Returns the conversation unchanged for an event it has seen, holds an
 * event that comes after a gap in `pending` (see {@link hasGap}), and applies a transient
 * event to its message's `live` text without touching `lastSeq`.
 */
export function applyEvent(conversation: Conversation, event: IncomingEvent): Conversation {
  if (isTransient(event)) {
    const [messages, message] = withMessage(conversation.messages, event.message_id, "assistant");
    if (event.type === "assistant_text_delta") message.live += event.text;
    else if (event.type === "assistant_thinking_delta") message.liveThinking += event.text;
    else return conversation;
    return { ...conversation, messages };
  }
  if (event.seq <= conversation.lastSeq) return conversation;
  if (event.seq === conversation.lastSeq + 1) {
    return drain(applyInOrder(conversation, event));
  }
  if (conversation.pending.some((e) => e.seq === event.seq)) return conversation;
  const pending = [...conversation.pending, event].sort((a, b) => a.seq - b.seq);
  return { ...conversation, pending };
}

/**
 * Whether the conversation must be refetched: events are missing (some arrived whose
 * predecessors did not), or a restore showed messages again that this client does not have.
 */
export function hasGap(conversation: Conversation): boolean {
  return conversation.pending.length > 0 || conversation.stale === true;
}

/** The conversation as `GET .../messages` returns it. */
export function fromMessages(messages: Message[]): Conversation {
  let lastSeq = 0;
  const views = messages.map((m) => {
    const view = newMessage(m.id, m.role);
    for (const event of m.content) {
      applyToMessage(view, event);
      lastSeq = Math.max(lastSeq, event.seq);
    }
    view.status = m.status;
    view.usage = m.usage ?? view.usage;
    view.costUsd = m.total_cost_usd ?? view.costUsd;
    view.model = m.model ?? null;
    return view;
  });
  return { lastSeq, messages: views, pending: [] };
}

/**
 * Combines a freshly fetched snapshot with what the stream has applied meanwhile: the newer
 * of the two wins, and held-back events that follow it are applied.
 */
export function mergeSnapshot(current: Conversation | undefined, snapshot: Conversation): Conversation {
  if (!current) return snapshot;
  if (snapshot.lastSeq >= current.lastSeq) {
    // The snapshot has everything the stream applied; events it held back may follow on.
    return drain({ ...snapshot, pending: current.pending });
  }
  return drain({ ...current, stale: false });
}

/** The assistant message of the running turn, if a turn is running. */
export function runningMessage(conversation: Conversation | undefined): MessageView | undefined {
  return conversation?.messages.findLast((m) => m.role === "assistant" && m.status === "in_progress");
}
