import { describe, expect, it } from "vitest";
import { lineDiff, toolSubtitle, toolView } from "./tools";

describe("tool cards", () => {
  it("shows a Bash call as its command", () => {
    const view = toolView("Bash", { command: "echo hi", description: "Say hi" });
    expect(view).toEqual({ kind: "bash", command: "echo hi", description: "Say hi" });
    expect(toolSubtitle(view)).toBe("Say hi");
  });

  it("shows a Write as a diff that adds every line", () => {
    const view = toolView("Write", { file_path: "notes/a.txt", content: "one\ntwo\n" });
    expect(view).toEqual({ kind: "diff", path: "notes/a.txt", changes: [{ sign: "+", text: "one" }, { sign: "+", text: "two" }] });
  });

  it("shows an Edit as the lines it changes, with context cut short", () => {
    const before = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "x"].join("\n");
    const after = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "y"].join("\n");
    const view = toolView("Edit", { file_path: "f", old_string: before, new_string: after });
    expect(view.kind).toBe("diff");
    if (view.kind !== "diff") return;
    expect(view.changes.filter((l) => l.sign !== " ")).toEqual([
      { sign: "-", text: "x" },
      { sign: "+", text: "y" },
    ]);
    expect(view.changes.some((l) => l.text.includes("unchanged lines"))).toBe(true);
  });

  it("shows the target of a lookup and the input of anything else", () => {
    expect(toolView("Read", { file_path: "/home/user/a.rs" })).toEqual({ kind: "lookup", target: "/home/user/a.rs" });
    expect(toolView("Grep", { pattern: "fn main", path: "src" })).toEqual({ kind: "lookup", target: "fn main  in src" });
    expect(toolView("WebFetch", { url: "u" })).toEqual({ kind: "generic", input: '{\n  "url": "u"\n}' });
    // A known tool with an unexpected input falls back to showing the input.
    expect(toolView("Bash", {}).kind).toBe("generic");
  });

  it("diffs identical text to context only", () => {
    expect(lineDiff("same\n", "same\n")).toEqual([{ sign: " ", text: "same" }]);
  });
});
