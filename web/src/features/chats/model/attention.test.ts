import { describe, expect, it } from "vitest";
import type { Chat } from "@/shared/api/types";
import { chatState, newlyWaiting, titleWithBadge, waitingChats } from "./attention";

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

  it("puts the count in the title", () => {
    expect(titleWithBadge("agentbox", 0)).toBe("agentbox");
    expect(titleWithBadge("agentbox", 2)).toBe("(2) agentbox");
  });
});
