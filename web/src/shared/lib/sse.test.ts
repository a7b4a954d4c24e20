import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("parses events split across chunks, with comments and CRLF", () => {
    const parser = new SseParser();
    expect(parser.push(":keep-alive\n\nid: 3\nevent: assistant_text\nda")).toEqual([]);
    expect(parser.push('ta: {"a":1}\r\n\r\nid: 4\ndata: x\ndata: y\n\n')).toEqual([
      { id: "3", event: "assistant_text", data: '{"a":1}' },
      { id: "4", event: "message", data: "x\ny" },
    ]);
  });

  it("waits for the LF of a CRLF split between chunks", () => {
    const parser = new SseParser();
    expect(parser.push("data: a\r")).toEqual([]);
    expect(parser.push("\n\r\n")).toEqual([{ id: null, event: "message", data: "a" }]);
  });
});
