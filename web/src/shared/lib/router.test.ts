import { describe, expect, it } from "vitest";
import { parseRoute } from "./router";

describe("routes", () => {
  it("knows a chat by its id and sends everything else home", () => {
    expect(parseRoute("/chats/5F0C6A62-8D0E-4C6E-9A51-3F1B1D3F0E11")).toEqual({ name: "chat", chatId: "5f0c6a62-8d0e-4c6e-9a51-3f1b1d3f0e11" });
    expect(parseRoute("/")).toEqual({ name: "home" });
    expect(parseRoute("/chats/not-an-id")).toEqual({ name: "home" });
    expect(parseRoute("/admin")).toEqual({ name: "admin" });
    expect(parseRoute("/admin/")).toEqual({ name: "admin" });
    expect(parseRoute("/administrator")).toEqual({ name: "home" });
    expect(parseRoute("/tasks")).toEqual({ name: "tasks" });
    expect(parseRoute("/tasks/x")).toEqual({ name: "home" });
  });
});
