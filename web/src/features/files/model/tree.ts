// The file tree as data: directories are listed one at a time (lazily, when opened), and the
// tree the user sees is the open directories' listings flattened into rows. Pure functions,
// so that expanding, collapsing, renaming and keyboard moves are tested without a browser.
import type { FileEntry } from "@/shared/api/types";

/** The listing of one directory as far as it is known. */
export type Listing = { state: "loading" } | { state: "error"; message: string } | { state: "loaded"; entries: FileEntry[] };

export type Row =
  | { kind: "entry"; entry: FileEntry; depth: number; expanded: boolean }
  /** A placeholder inside an open directory whose listing has not arrived (or failed). */
  | { kind: "status"; dir: string; depth: number; listing: Exclude<Listing, { state: "loaded" }> }
  | { kind: "empty"; dir: string; depth: number };

/** The workspace's root directory, as the API names it. */
export const ROOT = "";

export function isDir(entry: Pick<FileEntry, "kind">): boolean {
  return entry.kind === "dir";
}

export function joinPath(dir: string, name: string): string {
  return dir === ROOT ? name : `${dir}/${name}`;
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? ROOT : path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Whether `path` is `ancestor` or lies below it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === ROOT || path === ancestor || path.startsWith(`${ancestor}/`);
}

/** Why a name for a new or renamed file is not acceptable, or `null` if it is. */
export function nameProblem(name: string, siblings: readonly string[] = []): string | null {
  if (name.trim() === "") return "Give it a name.";
  if (name.includes("/")) return "A name cannot contain “/”.";
  if (name === "." || name === "..") return "“.” and “..” are not names of their own.";
  if (name.includes("\0")) return "A name cannot contain a NUL character.";
  if (new TextEncoder().encode(name).length > 255) return "That name is too long (at most 255 bytes).";
  if (siblings.includes(name)) return `“${name}” already exists here.`;
  return null;
}

/**
 * Whether `path` is the CLI's own state in the home directory (`.claude/`, its settings,
 * transcripts and todos, and `.claude.json`), which the tree hides unless asked.
 */
export function isCliOwn(path: string): boolean {
  return path === ".claude" || path.startsWith(".claude/") || path === ".claude.json" || path.startsWith(".claude.json.");
}

/**
 * The rows of the tree: the root's entries, and inside each open directory its own; the
 * CLI's own files only with `showCliFiles`.
 */
export function visibleRows(listings: ReadonlyMap<string, Listing>, expanded: ReadonlySet<string>, showCliFiles = true): Row[] {
  const rows: Row[] = [];
  const walk = (dir: string, depth: number) => {
    const listing = listings.get(dir) ?? { state: "loading" };
    if (listing.state !== "loaded") {
      rows.push({ kind: "status", dir, depth, listing });
      return;
    }
    if (listing.entries.length === 0 && dir !== ROOT) {
      rows.push({ kind: "empty", dir, depth });
      return;
    }
    for (const entry of listing.entries) {
      if (!showCliFiles && isCliOwn(entry.path)) continue;
      const open = isDir(entry) && expanded.has(entry.path);
      rows.push({ kind: "entry", entry, depth, expanded: open });
      if (open) walk(entry.path, depth + 1);
    }
  };
  walk(ROOT, 0);
  return rows;
}

/** The open directories after `from` was renamed or moved to `to`. */
export function expandedAfterMove(expanded: ReadonlySet<string>, from: string, to: string): Set<string> {
  const next = new Set<string>();
  for (const path of expanded) next.add(isWithin(path, from) && from !== ROOT ? to + path.slice(from.length) : path);
  return next;
}

/** The open directories after `path` was deleted. */
export function expandedAfterDelete(expanded: ReadonlySet<string>, path: string): Set<string> {
  return new Set([...expanded].filter((p) => !isWithin(p, path)));
}

/** The directory that new files go into when `selected` is selected: itself, or its parent. */
export function targetDirectory(selected: FileEntry | null): string {
  if (!selected) return ROOT;
  return isDir(selected) ? selected.path : parentOf(selected.path);
}

export type TreeKey = "ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight" | "Home" | "End";

/** What a key does in the tree (the WAI-ARIA tree pattern): move, open or close. */
export type TreeMove = { select: string } | { expand: string } | { collapse: string } | null;

export function treeKey(rows: readonly Row[], selected: string | null, key: TreeKey): TreeMove {
  const entries = rows.filter((r): r is Extract<Row, { kind: "entry" }> => r.kind === "entry");
  if (entries.length === 0) return null;
  const index = entries.findIndex((r) => r.entry.path === selected);
  const current = entries[index];
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (!current || !first || !last) return first ? { select: first.entry.path } : null;
  switch (key) {
    case "ArrowUp":
      return index > 0 ? { select: entries[index - 1]?.entry.path ?? current.entry.path } : null;
    case "ArrowDown":
      return index < entries.length - 1 ? { select: entries[index + 1]?.entry.path ?? current.entry.path } : null;
    case "Home":
      return { select: first.entry.path };
    case "End":
      return { select: last.entry.path };
    case "ArrowRight":
      if (!isDir(current.entry)) return null;
      if (!current.expanded) return { expand: current.entry.path };
      // Into the open directory's first child, if it has one.
      return entries[index + 1] && entries[index + 1]?.depth === current.depth + 1 ? { select: entries[index + 1]?.entry.path ?? "" } : null;
    case "ArrowLeft":
      if (isDir(current.entry) && current.expanded) return { collapse: current.entry.path };
      return current.depth > 0 ? { select: parentOf(current.entry.path) } : null;
  }
}
