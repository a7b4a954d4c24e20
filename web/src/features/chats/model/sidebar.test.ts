import { describe, expect, it } from "vitest";
import { filterChats } from "./sidebar";

describe("chat search", () => {
  const chats = [{ title: "Fix the parser" }, { title: "Write docs" }, { title: "Parser benchmarks" }];

  it("matches every word, in any case and order", () => {
    expect(filterChats(chats, "parser").map((c) => c.title)).toEqual(["Fix the parser", "Parser benchmarks"]);
    expect(filterChats(chats, "BENCH  parser").map((c) => c.title)).toEqual(["Parser benchmarks"]);
    expect(filterChats(chats, "  ")).toBe(chats);
    expect(filterChats(chats, "nothing")).toEqual([]);
  });
});
