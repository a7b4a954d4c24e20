// The tree of the workspace's files, navigable with the keyboard as a WAI-ARIA tree: arrows
// move and open, Enter opens a file, F2 renames, Delete deletes.
import type { KeyboardEvent } from "react";
import type { FileEntry } from "@/shared/api/types";
import { Spinner } from "@/shared/ui/Spinner";
import { DownloadIcon, FileIcon, FolderIcon, LinkFileIcon, PencilIcon, TrashIcon } from "@/shared/ui/icons";
import { formatSize } from "../model/document";
import { isDir, parentOf, treeKey, type Row, type TreeKey } from "../model/tree";

const TREE_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End"]);

export function FileTree({
  rows,
  selected,
  openPath,
  dropTarget,
  onSelect,
  onToggle,
  onOpen,
  onRename,
  onDelete,
  onDownload,
}: {
  rows: Row[];
  selected: string | null;
  openPath: string | null;
  /** The directory a drag is over, highlighted as where the files will go. */
  dropTarget: string | null;
  onSelect: (path: string) => void;
  onToggle: (path: string, open?: boolean) => void;
  onOpen: (entry: FileEntry) => void;
  onRename: (entry: FileEntry) => void;
  onDelete: (entry: FileEntry) => void;
  onDownload: (entry: FileEntry) => void;
}) {
  const entryAt = (path: string | null) => rows.find((r): r is Extract<Row, { kind: "entry" }> => r.kind === "entry" && r.entry.path === path)?.entry ?? null;

  const focusRow = (path: string) => {
    requestAnimationFrame(() => document.querySelector<HTMLElement>(`[data-path="${CSS.escape(path)}"]`)?.focus());
  };

  const onKeyDown = (event: KeyboardEvent<HTMLUListElement>) => {
    if (event.target instanceof HTMLButtonElement && event.target.closest(".tree-actions")) return;
    if (TREE_KEYS.has(event.key)) {
      event.preventDefault();
      const move = treeKey(rows, selected, event.key as TreeKey);
      if (!move) return;
      if ("select" in move) {
        onSelect(move.select);
        focusRow(move.select);
      } else if ("expand" in move) onToggle(move.expand, true);
      else onToggle(move.collapse, false);
      return;
    }
    const entry = entryAt(selected);
    if (!entry) return;
    if (event.key === "Enter") {
      event.preventDefault();
      if (isDir(entry)) onToggle(entry.path);
      else onOpen(entry);
    } else if (event.key === "F2") {
      event.preventDefault();
      onRename(entry);
    } else if (event.key === "Delete") {
      event.preventDefault();
      onDelete(entry);
    }
  };

  // The selected row (or the first) is the one Tab reaches; arrows move from there.
  const tabStop = entryAt(selected)?.path ?? rows.find((r) => r.kind === "entry")?.entry.path;

  return (
    <ul className="file-tree" role="tree" aria-label="Files" onKeyDown={onKeyDown}>
      {rows.map((row) => {
        if (row.kind === "status") {
          return (
            <li key={`status:${row.dir}`} role="none" className="tree-note" style={{ paddingLeft: indent(row.depth) }}>
              {row.listing.state === "loading" ? <Spinner label="Loading" /> : <span className="bad">{row.listing.message}</span>}
            </li>
          );
        }
        if (row.kind === "empty") {
          return (
            <li key={`empty:${row.dir}`} role="none" className="tree-note muted" style={{ paddingLeft: indent(row.depth) }}>
              (empty)
            </li>
          );
        }
        const { entry, depth, expanded } = row;
        const dir = isDir(entry);
        const target = dir ? entry.path : parentOf(entry.path);
        const classes = ["tree-row", entry.path === selected ? "selected" : "", entry.path === openPath ? "open" : "", dropTarget !== null && dropTarget === entry.path && dir ? "drop" : ""];
        return (
          <li
            key={entry.path}
            role="treeitem"
            aria-level={depth + 1}
            aria-expanded={dir ? expanded : undefined}
            aria-selected={entry.path === selected}
            tabIndex={entry.path === tabStop ? 0 : -1}
            data-path={entry.path}
            data-dir={target}
            data-kind={entry.kind}
            className={classes.filter(Boolean).join(" ")}
            style={{ paddingLeft: indent(depth) }}
            // Selection follows focus, as in a file manager's tree.
            onFocus={(event) => {
              if (event.target === event.currentTarget && entry.path !== selected) onSelect(entry.path);
            }}
            onClick={() => {
              onSelect(entry.path);
              if (dir) onToggle(entry.path);
              else onOpen(entry);
            }}
          >
            <span className="tree-chevron" aria-hidden>
              {dir ? (expanded ? "▾" : "▸") : ""}
            </span>
            <span className={`tree-icon tree-icon-${entry.kind}`} aria-hidden>
              {dir ? <FolderIcon open={expanded} /> : entry.kind === "symlink" ? <LinkFileIcon /> : <FileIcon />}
            </span>
            <span className="tree-name">{entry.name}</span>
            {entry.link_target && <span className="tree-link muted">→ {entry.link_target}</span>}
            {!dir && entry.kind === "file" && <span className="tree-size muted">{formatSize(entry.size)}</span>}
            <span className="tree-actions" onClick={(event) => event.stopPropagation()}>
              {entry.kind === "file" && (
                <button type="button" className="icon-btn" aria-label={`Download “${entry.name}”`} title="Download" tabIndex={-1} onClick={() => onDownload(entry)}>
                  <DownloadIcon />
                </button>
              )}
              <button type="button" className="icon-btn" aria-label={`Rename “${entry.name}”`} title="Rename (F2)" tabIndex={-1} onClick={() => onRename(entry)}>
                <PencilIcon />
              </button>
              <button type="button" className="icon-btn" aria-label={`Delete “${entry.name}”`} title="Delete" tabIndex={-1} onClick={() => onDelete(entry)}>
                <TrashIcon />
              </button>
            </span>
          </li>
        );
      })}
    </ul>
  );
}

const indent = (depth: number) => `${6 + depth * 14}px`;
