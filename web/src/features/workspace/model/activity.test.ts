import { describe, expect, it } from "vitest";
import type { MessageView } from "@/features/conversation/model/conversation";
import { fileActivity, pathsOfCall, workspacePath } from "./activity";

describe("paths on tool cards", () => {
  it("names workspace files relative to the home directory", () => {
    expect(workspacePath("/home/user/src/app.py")).toBe("src/app.py");
    expect(workspacePath("notes/a.txt")).toBe("notes/a.txt");
    expect(workspacePath("./a.txt")).toBe("a.txt");
  });

  it("refuses paths outside the workspace", () => {
    expect(workspacePath("/etc/hosts")).toBeNull();
    expect(workspacePath("/home/user")).toBeNull();
    expect(workspacePath("/home/user/../root/x")).toBeNull();
    expect(workspacePath("")).toBeNull();
  });

  it("finds a call's file and the files a Glob listed", () => {
    expect(pathsOfCall("Read", { file_path: "/home/user/a.py" }, "1\tx")).toEqual(["/home/user/a.py"]);
    expect(pathsOfCall("Read", { file_path: "/etc/passwd" }, "root")).toEqual([]);
    expect(pathsOfCall("Glob", { pattern: "*.py" }, "/home/user/a.py\n/home/user/b/c.py\n")).toEqual(["/home/user/a.py", "/home/user/b/c.py"]);
    expect(pathsOfCall("Grep", { pattern: "x" }, "/home/user/a.py:3:x = 1\n/home/user/a.py:4:x")).toEqual(["/home/user/a.py"]);
  });
});

describe("file activity", () => {
  it("counts the agent's file changes, not its reads", () => {
    const message: MessageView = {
      id: "a",
      role: "assistant",
      status: "completed",
      usage: null,
      costUsd: null,
      model: null,
      live: "", liveThinking: "",
      blocks: [
        { kind: "tool", seq: 1, id: "1", name: "Read", input: {}, state: "completed", output: "", parent: null },
        { kind: "tool", seq: 2, id: "2", name: "Write", input: {}, state: "completed", output: "", parent: null },
        { kind: "tool", seq: 3, id: "3", name: "Edit", input: {}, state: "running", output: null, parent: null },
      ],
    };
    expect(fileActivity([message])).toBe(2);
    expect(fileActivity([])).toBe(0);
  });
});
