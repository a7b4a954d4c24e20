import { describe, expect, it } from "vitest";
import { groupChats } from "./groups";

describe("chat list sections", () => {
  const now = new Date(2026, 11, 2, 9, 30);
  const at = (days: number, hour = 12) => new Date(2026, 11, 2 - days, hour).toISOString();
  const chat = (title: string, updated_at: string, pinned = false) => ({ title, updated_at, pinned });

  it("puts pinned chats first, then today, yesterday, the last 7 days and older", () => {
    const chats = [
      chat("a", at(0, 8)),
      chat("pinned old", at(30), true),
      chat("b", at(1, 23)),
      chat("c", at(1, 0)),
      chat("d", at(6)),
      chat("e", at(7)),
      chat("f", at(400)),
    ];
    const groups = groupChats(chats, now).map((g) => [g.name, g.chats.map((c) => c.title)]);
    expect(groups).toEqual([
      ["Pinned", ["pinned old"]],
      ["Today", ["a"]],
      ["Yesterday", ["b", "c"]],
      ["Last 7 days", ["d"]],
      ["Older", ["e", "f"]],
    ]);
  });

  it("leaves empty sections out, and a clock ahead of the server counts as today", () => {
    expect(groupChats([], now)).toEqual([]);
    const later = new Date(2026, 11, 2, 10).toISOString();
    expect(groupChats([chat("soon", later)], now).map((g) => g.name)).toEqual(["Today"]);
  });
});
