import { describe, expect, it } from "vitest";
import type { FileEntry } from "@/shared/api/types";
import {
  baseName,
  expandedAfterDelete,
  expandedAfterMove,
  joinPath,
  nameProblem,
  parentOf,
  targetDirectory,
  treeKey,
  visibleRows,
  isCliOwn,
  type Listing,
} from "./tree";

function entry(path: string, kind: "file" | "dir" = "file"): FileEntry {
  return { name: baseName(path), path, kind, size: 10, mode: 0o644, modified: 0 };
}

const loaded = (...entries: FileEntry[]): Listing => ({ state: "loaded", entries });

const listings = new Map<string, Listing>([
  ["", loaded(entry("src", "dir"), entry("empty", "dir"), entry("README.md"))],
  ["src", loaded(entry("src/lib", "dir"), entry("src/main.rs"))],
  ["src/lib", { state: "loading" }],
  ["empty", loaded()],
]);

const shown = (rows: ReturnType<typeof visibleRows>) =>
  rows.map((r) => `${"  ".repeat(r.depth)}${r.kind === "entry" ? r.entry.name + (r.expanded ? "/" : "") : r.kind === "status" ? `(${r.listing.state})` : "(empty)"}`);

describe("the file tree", () => {
  it("hides the CLI's own files unless asked", () => {
    const home = new Map<string, Listing>([["", loaded(entry(".claude", "dir"), entry(".claude.json"), entry(".claudeignore"), entry("app.py"))]]);
    expect(shown(visibleRows(home, new Set(), false))).toEqual([".claudeignore", "app.py"]);
    expect(shown(visibleRows(home, new Set()))).toEqual([".claude", ".claude.json", ".claudeignore", "app.py"]);
    expect(isCliOwn(".claude/projects/x.jsonl")).toBe(true);
    expect(isCliOwn("src/.claude")).toBe(false);
  });

  it("shows the root, and inside each open directory its entries, a loading row or an empty row", () => {
    expect(shown(visibleRows(listings, new Set()))).toEqual(["src", "empty", "README.md"]);
    expect(shown(visibleRows(listings, new Set(["src", "src/lib", "empty"])))).toEqual([
      "src/",
      "  lib/",
      "    (loading)",
      "  main.rs",
      "empty/",
      "  (empty)",
      "README.md",
    ]);
    // A directory whose parent is closed stays hidden even if it is open itself.
    expect(shown(visibleRows(listings, new Set(["src/lib"])))).toEqual(["src", "empty", "README.md"]);
    expect(shown(visibleRows(new Map([["", { state: "error", message: "boom" }]]), new Set()))).toEqual(["(error)"]);
    expect(visibleRows(new Map([["", loaded()]]), new Set())).toEqual([]);
  });

  it("joins and splits paths relative to the workspace", () => {
    expect(joinPath("", "a.txt")).toBe("a.txt");
    expect(joinPath("src", "a.txt")).toBe("src/a.txt");
    expect(parentOf("src/lib/a.rs")).toBe("src/lib");
    expect(parentOf("a.rs")).toBe("");
    expect(baseName("src/lib/a.rs")).toBe("a.rs");
    expect(targetDirectory(null)).toBe("");
    expect(targetDirectory(entry("src", "dir"))).toBe("src");
    expect(targetDirectory(entry("src/main.rs"))).toBe("src");
  });

  it("refuses names that are empty, contain a slash, are special, too long or taken", () => {
    expect(nameProblem("notes.txt")).toBeNull();
    expect(nameProblem("  ")).toMatch(/name/);
    expect(nameProblem("a/b")).toMatch(/“\/”/);
    expect(nameProblem("..")).not.toBeNull();
    expect(nameProblem("x".repeat(256))).toMatch(/too long/);
    expect(nameProblem("README.md", ["README.md"])).toMatch(/already exists/);
  });

  it("keeps open directories open across a rename and forgets deleted ones", () => {
    const open = new Set(["src", "src/lib", "srcs", "docs"]);
    expect([...expandedAfterMove(open, "src", "code")].sort()).toEqual(["code", "code/lib", "docs", "srcs"]);
    expect([...expandedAfterDelete(open, "src")].sort()).toEqual(["docs", "srcs"]);
  });

  it("moves with the arrow keys as a tree should", () => {
    const open = new Set(["src"]);
    const rows = visibleRows(listings, open);
    expect(treeKey(rows, null, "ArrowDown")).toEqual({ select: "src" });
    expect(treeKey(rows, "src", "ArrowDown")).toEqual({ select: "src/lib" });
    expect(treeKey(rows, "src/lib", "ArrowUp")).toEqual({ select: "src" });
    expect(treeKey(rows, "src", "ArrowUp")).toBeNull();
    expect(treeKey(rows, "src", "ArrowRight")).toEqual({ select: "src/lib" });
    expect(treeKey(rows, "src/lib", "ArrowRight")).toEqual({ expand: "src/lib" });
    expect(treeKey(rows, "src/main.rs", "ArrowLeft")).toEqual({ select: "src" });
    expect(treeKey(rows, "src", "ArrowLeft")).toEqual({ collapse: "src" });
    expect(treeKey(rows, "README.md", "ArrowRight")).toBeNull();
    expect(treeKey(rows, "src/lib", "End")).toEqual({ select: "README.md" });
    expect(treeKey(rows, "README.md", "Home")).toEqual({ select: "src" });
  });
});
