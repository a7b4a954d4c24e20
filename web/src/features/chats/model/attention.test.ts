import { describe, expect, it } from "vitest";
import type { Chat } from "@/shared/api/types";
import { attentionChats, chatState, newlyWaiting, titleWithBadge, waitingChats } from "./attention";

const chat = (id: string, extra: Partial<Chat>): Chat => ({ id, status: "idle", pending_requests: 0, sandbox_status: "running", ...extra }) as Chat;

describe("attention", () => {
  it("a chat that waits for an answer says so before anything else", () => {
    expect(chatState(chat("a", { status: "running", pending_requests: 1 }))).toBe("waiting");
    expect(chatState(chat("a", { status: "running" }))).toBe("running");
    expect(chatState(chat("a", { sandbox_status: "paused" }))).toBe("paused");
    expect(chatState(chat("a", {}))).toBe("idle");
  });

  it("notifies once per chat that starts waiting", () => {
    const first = waitingChats([chat("a", { pending_requests: 1 }), chat("b", {})]);
    expect(newlyWaiting(new Set(), first)).toEqual(["a"]);
    const second = waitingChats([chat("a", { pending_requests: 2 }), chat("b", { pending_requests: 1 })]);
    expect(newlyWaiting(first, second)).toEqual(["b"]);
    expect(newlyWaiting(second, second)).toEqual([]);
  });

  it("counts a chat whose scheduled run ended unseen, after waiting and running", () => {
    const run = { run_id: "r", task_id: "t", task_name: "Nightly", chat_id: "b", status: "completed", ended_at: null } as const;
    expect(chatState(chat("b", { unseen_task_run: run }))).toBe("news");
    expect(chatState(chat("b", { unseen_task_run: run, status: "running" }))).toBe("running");
    expect(chatState(chat("b", { unseen_task_run: run, pending_requests: 1 }))).toBe("waiting");
    const chats = [chat("a", { pending_requests: 1 }), chat("b", { unseen_task_run: run }), chat("c", { unseen_task_run: null })];
    expect([...attentionChats(chats)].sort()).toEqual(["a", "b"]);
    expect([...waitingChats(chats)]).toEqual(["a"]);
  });

  it("puts the count in the title", () => {
    expect(titleWithBadge("agentbox", 0)).toBe("agentbox");
    expect(titleWithBadge("agentbox", 2)).toBe("(2) agentbox");
  });
});
