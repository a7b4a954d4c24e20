// The files of the chat's sandbox: a tree whose directories are listed when opened, the editor
// for the open file, and the operations (new file or folder, upload by picker or drop,
// download of a file or of the workspace as a zip, rename, delete). The tree refreshes when
// the agent may have changed files and whenever the panel is shown.
import { useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { ApiError } from "@/shared/api/client";
import type { FileEntry } from "@/shared/api/types";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { DownloadIcon, EyeIcon, FilePlusIcon, FolderPlusIcon, RefreshIcon, UploadIcon } from "@/shared/ui/icons";
import { conversationQuery } from "@/features/conversation/api/conversation";
import { sandboxKeys } from "@/features/sandbox/api/sandbox";
import { takeFileRequest, useFileRequest } from "@/features/workspace/model/panel";
import { downloadFile, downloadZip, fileKeys, listQuery, statPath, useFileMutations } from "../api/files";
import { fileChangeMark, planUploads } from "../model/document";
import { setUnsavedFile } from "../model/unsaved";
import {
  baseName,
  expandedAfterDelete,
  expandedAfterMove,
  isCliOwn,
  isDir,
  isWithin,
  joinPath,
  nameProblem,
  parentOf,
  ROOT,
  targetDirectory,
  visibleRows,
  type Listing,
} from "../model/tree";
import { droppedFiles, type DroppedFile } from "./dropped";
import { FileEditor } from "./FileEditor";
import { FileTree } from "./FileTree";
import { NameDialog } from "./NameDialog";

type DialogState =
  | { kind: "new-file"; dir: string }
  | { kind: "new-folder"; dir: string }
  | { kind: "rename"; entry: FileEntry }
  | { kind: "delete"; entry: FileEntry };

type Notice = { kind: "info" | "error"; text: string };

const messageOf = (error: unknown) => (error instanceof ApiError ? error.message : "Something went wrong.");

/** Whether something exists at `path` (a name can be taken even if the listing is stale). */
async function exists(chatId: string, path: string): Promise<boolean> {
  try {
    await statPath(chatId, path);
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return false;
    throw error;
  }
}

/** Refreshes the tree when the agent may have changed files: a file tool finished or a turn ended. */
function useAgentFileChanges(chatId: string, onChange: () => void): void {
  const queryClient = useQueryClient();
  const mark = useQuery({ ...conversationQuery(queryClient, chatId), select: fileChangeMark }).data;
  const last = useRef<string | undefined>(undefined);
  const callback = useRef(onChange);
  callback.current = onChange;
  useEffect(() => {
    if (mark === undefined) return;
    if (last.current !== undefined && last.current !== mark) callback.current();
    last.current = mark;
  }, [mark]);
}

export function FilesPanel({ chatId, visible }: { chatId: string; visible: boolean }) {
  const queryClient = useQueryClient();
  const mutations = useFileMutations(chatId);
  const [expanded, setExpanded] = useState<Set<string>>(() => new Set());
  const [selected, setSelected] = useState<string | null>(null);
  const [openPath, setOpenPath] = useState<string | null>(null);
  const [dirty, setDirty] = useState(false);
  /** A file (or `null`: none) waiting to be opened once the user agrees to drop unsaved changes. */
  const [discardFor, setDiscardFor] = useState<{ next: string | null } | null>(null);
  const [dialog, setDialog] = useState<DialogState | null>(null);
  const [dialogError, setDialogError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [refreshMark, setRefreshMark] = useState(0);
  const [dropTarget, setDropTarget] = useState<string | null>(null);
  const [uploading, setUploading] = useState<{ done: number; total: number } | null>(null);
  /** An upload waiting for the user to agree to replace what is there. */
  const [replaceFor, setReplaceFor] = useState<{ files: DroppedFile[]; dir: string; names: string[] } | null>(null);
  const picker = useRef<HTMLInputElement>(null);

  // The workspace panel asks before closing while there are unsaved changes.
  useEffect(() => {
    setUnsavedFile(chatId, dirty && openPath !== null);
  }, [chatId, dirty, openPath]);
  useEffect(() => () => setUnsavedFile(chatId, false), [chatId]);

  const dirs = useMemo(() => [ROOT, ...expanded], [expanded]);
  const results = useQueries({ queries: dirs.map((dir) => ({ ...listQuery(chatId, dir), enabled: visible })) });
  const listings = new Map<string, Listing>(
    dirs.map((dir, i) => {
      const result = results[i];
      const listing: Listing = result?.data
        ? { state: "loaded", entries: result.data }
        : result?.isError
          ? { state: "error", message: messageOf(result.error) }
          : { state: "loading" };
      return [dir, listing];
    }),
  );
  // The CLI's own `.claude/` and `.claude.json` are not the user's work: hidden unless asked.
  const [showCliFiles, setShowCliFiles] = useState(false);
  const rows = visibleRows(listings, expanded, showCliFiles);
  const rootListing = listings.get(ROOT);
  const entryByPath = (path: string | null): FileEntry | null => {
    if (path === null) return null;
    const listing = listings.get(parentOf(path));
    return listing?.state === "loaded" ? (listing.entries.find((e) => e.path === path) ?? null) : null;
  };
  const selectedEntry = entryByPath(selected);

  // A directory that vanished (the agent removed it) is simply closed.
  const vanished = dirs.filter((dir, i) => dir !== ROOT && results[i]?.error instanceof ApiError && (results[i]?.error as ApiError).status === 404).join("\n");
  useEffect(() => {
    if (!vanished) return;
    const gone = new Set(vanished.split("\n"));
    setExpanded((open) => new Set([...open].filter((p) => !gone.has(p))));
  }, [vanished]);

  const refresh = useCallback(() => {
    void queryClient.invalidateQueries({ queryKey: fileKeys.all(chatId) });
    void queryClient.invalidateQueries({ queryKey: sandboxKeys.detail(chatId) });
    setRefreshMark((n) => n + 1);
  }, [chatId, queryClient]);

  useAgentFileChanges(chatId, refresh);
  // Shown again: files may have changed from the terminal meanwhile.
  const wasVisible = useRef(visible);
  useEffect(() => {
    if (visible && !wasVisible.current) refresh();
    wasVisible.current = visible;
  }, [visible, refresh]);

  useEffect(() => {
    if (notice?.kind !== "info") return;
    const timer = setTimeout(() => setNotice(null), 6000);
    return () => clearTimeout(timer);
  }, [notice]);

  const toggle = (path: string, open?: boolean) =>
    setExpanded((current) => {
      const next = new Set(current);
      if (open ?? !current.has(path)) next.add(path);
      else next.delete(path);
      return next;
    });

  /** Opens a directory and its ancestors, so that something inside it can be shown. */
  const reveal = (dir: string) =>
    setExpanded((current) => {
      const next = new Set(current);
      for (let d = dir; d !== ROOT; d = parentOf(d)) next.add(d);
      return next;
    });

  const requestOpen = (path: string | null) => {
    if (path === openPath) return;
    if (dirty) setDiscardFor({ next: path });
    else setOpenPath(path);
  };

  const closeDialog = () => {
    setDialog(null);
    setDialogError(null);
    setBusy(false);
  };

  const siblingsOf = (dir: string) => {
    const listing = listings.get(dir);
    return listing?.state === "loaded" ? listing.entries.map((e) => e.name) : [];
  };

  const create = async (kind: "new-file" | "new-folder", dir: string, name: string) => {
    const path = joinPath(dir, name);
    setBusy(true);
    try {
      if (await exists(chatId, path)) {
        setDialogError(`“${name}” already exists here.`);
        setBusy(false);
        return;
      }
      if (kind === "new-file") await mutations.write.mutateAsync({ path, body: new Uint8Array() });
      else await mutations.mkdir.mutateAsync(path);
      closeDialog();
      reveal(dir);
      setSelected(path);
      if (kind === "new-file") requestOpen(path);
      setNotice({ kind: "info", text: `Created ${path}.` });
    } catch (error) {
      setDialogError(messageOf(error));
      setBusy(false);
    }
  };

  const rename = async (entry: FileEntry, name: string) => {
    const to = joinPath(parentOf(entry.path), name);
    if (to === entry.path) return closeDialog();
    setBusy(true);
    try {
      // A move onto an existing name would replace it; a rename never should.
      if (await exists(chatId, to)) {
        setDialogError(`“${name}” already exists here.`);
        setBusy(false);
        return;
      }
      await mutations.move.mutateAsync({ from: entry.path, to });
      closeDialog();
      setExpanded((open) => expandedAfterMove(open, entry.path, to));
      setSelected(to);
      if (openPath && isWithin(openPath, entry.path)) setOpenPath(to + openPath.slice(entry.path.length));
      setNotice({ kind: "info", text: `Renamed to ${to}.` });
    } catch (error) {
      setDialogError(messageOf(error));
      setBusy(false);
    }
  };

  const remove = async (entry: FileEntry) => {
    setBusy(true);
    try {
      await mutations.remove.mutateAsync(entry.path);
      closeDialog();
      setExpanded((open) => expandedAfterDelete(open, entry.path));
      if (selected && isWithin(selected, entry.path)) setSelected(null);
      if (openPath && isWithin(openPath, entry.path)) {
        setDirty(false);
        setOpenPath(null);
      }
      setNotice({ kind: "info", text: `Deleted ${entry.path}.` });
    } catch (error) {
      setDialogError(messageOf(error));
      setBusy(false);
    }
  };

  /** Uploads, after asking when they would replace files already there. */
  const upload = async (files: DroppedFile[], dir: string) => {
    const taken = new Set(siblingsOf(dir));
    const replacing = [...new Set(files.map((f) => f.relativePath.split("/")[0] ?? f.relativePath))].filter((name) => taken.has(name));
    if (replacing.length > 0) setReplaceFor({ files, dir, names: replacing });
    else await uploadNow(files, dir);
  };

  const uploadNow = async (files: DroppedFile[], dir: string) => {
    const plan = planUploads(files, dir);
    if (plan.uploads.length === 0 && plan.refused.length === 0) return;
    let done = 0;
    const failed: string[] = [...plan.refused];
    setUploading({ done, total: plan.uploads.length });
    for (const { file, path } of plan.uploads) {
      try {
        await mutations.write.mutateAsync({ path, body: file });
      } catch (error) {
        failed.push(`${path}: ${messageOf(error)}`);
      }
      done += 1;
      setUploading({ done, total: plan.uploads.length });
    }
    setUploading(null);
    const first = plan.uploads[0];
    if (first) {
      reveal(dir);
      // The top-level item of the first upload (a file, or the folder it was dropped in).
      const relative = dir === ROOT ? first.path : first.path.slice(dir.length + 1);
      setSelected(joinPath(dir, relative.split("/")[0] ?? relative));
    }
    const uploaded = plan.uploads.length - (failed.length - plan.refused.length);
    const where = dir === ROOT ? "the workspace" : dir;
    setNotice(
      failed.length > 0
        ? { kind: "error", text: `Uploaded ${uploaded} of ${plan.uploads.length + plan.refused.length} to ${where}. Not uploaded: ${failed.join("; ")}` }
        : { kind: "info", text: `Uploaded ${uploaded} ${uploaded === 1 ? "file" : "files"} to ${where}.` },
    );
  };

  const download = (entry: FileEntry) =>
    void downloadFile(chatId, entry.path, entry.name).catch((error: unknown) => setNotice({ kind: "error", text: messageOf(error) }));

  const onDragOver = (event: DragEvent<HTMLDivElement>) => {
    if (!event.dataTransfer.types.includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    const row = (event.target as HTMLElement).closest<HTMLElement>("[data-dir]");
    setDropTarget(row?.dataset.dir ?? ROOT);
  };

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    if (!event.dataTransfer.types.includes("Files")) return;
    event.preventDefault();
    const row = (event.target as HTMLElement).closest<HTMLElement>("[data-dir]");
    const dir = row?.dataset.dir ?? ROOT;
    setDropTarget(null);
    droppedFiles(event.dataTransfer)
      .then((files) => upload(files, dir))
      .catch((error: unknown) => setNotice({ kind: "error", text: `The dropped files could not be read: ${String(error)}` }));
  };

  // A path clicked on a tool card: shown in the tree and opened in the editor.
  // Taken once: the panel mounts after the request when the click opened it.
  const fileRequest = useFileRequest();
  useEffect(() => {
    if (!fileRequest) return;
    takeFileRequest();
    reveal(parentOf(fileRequest.path));
    setSelected(fileRequest.path);
    requestOpen(fileRequest.path);
  }, [fileRequest]);

  const newIn = targetDirectory(selectedEntry);
  const openEntry = (entry: FileEntry) => {
    setSelected(entry.path);
    requestOpen(entry.path);
  };

  return (
    <div className="files-panel" hidden={!visible}>
      <div className="files-toolbar" role="toolbar" aria-label="File actions">
        <button type="button" className="icon-btn" aria-label="New file" title={`New file in ${newIn || "the workspace"}`} onClick={() => setDialog({ kind: "new-file", dir: newIn })}>
          <FilePlusIcon />
        </button>
        <button type="button" className="icon-btn" aria-label="New folder" title={`New folder in ${newIn || "the workspace"}`} onClick={() => setDialog({ kind: "new-folder", dir: newIn })}>
          <FolderPlusIcon />
        </button>
        <button type="button" className="icon-btn" aria-label="Upload files" title={`Upload files to ${newIn || "the workspace"} (or drop them on the tree)`} onClick={() => picker.current?.click()}>
          <UploadIcon />
        </button>
        <button
          type="button"
          className="icon-btn"
          aria-label="Download the workspace as a zip"
          title="Download the workspace as a zip"
          onClick={() => void downloadZip(chatId, ROOT, "workspace.zip").catch((error: unknown) => setNotice({ kind: "error", text: messageOf(error) }))}
        >
          <DownloadIcon />
        </button>
        <button
          type="button"
          className={`icon-btn ${showCliFiles ? "active" : ""}`}
          aria-pressed={showCliFiles}
          aria-label="Show the CLI's files"
          title={showCliFiles ? "Hide .claude/ and .claude.json (the CLI's own files)" : "Show .claude/ and .claude.json (the CLI's own files)"}
          onClick={() => setShowCliFiles((shown) => !shown)}
        >
          <EyeIcon />
        </button>
        <button type="button" className="icon-btn" aria-label="Refresh the files" title="Refresh" onClick={refresh}>
          <RefreshIcon />
        </button>
        <span className="files-home muted small" title="Paths are relative to the sandbox's home directory">
          /home/user
        </span>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          aria-label="Files to upload"
          data-testid="upload-input"
          onChange={(event) => {
            const files = [...(event.target.files ?? [])].map((file) => ({ file, relativePath: file.name }));
            event.target.value = "";
            void upload(files, newIn);
          }}
        />
      </div>
      {(notice || uploading) && (
        <p className={`files-notice ${notice?.kind === "error" ? "bad" : ""}`} role={notice?.kind === "error" ? "alert" : "status"}>
          {uploading ? `Uploading ${uploading.done + 1 > uploading.total ? uploading.total : uploading.done + 1} of ${uploading.total}…` : notice?.text}
          {notice && !uploading && (
            <button type="button" className="link" onClick={() => setNotice(null)}>
              Dismiss
            </button>
          )}
        </p>
      )}
      <div
        className={`files-tree-area ${openPath ? "with-editor" : ""} ${dropTarget === ROOT ? "drop" : ""}`}
        onDragOver={onDragOver}
        onDragLeave={(event) => {
          if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDropTarget(null);
        }}
        onDrop={onDrop}
      >
        {rootListing?.state === "loaded" && rootListing.entries.every((entry) => !showCliFiles && isCliOwn(entry.path)) ? (
          <div className="panel-empty">
            <p>The workspace is empty. Ask the agent to create something, make a file with the buttons above, or drop files here to upload them.</p>
          </div>
        ) : (
          <FileTree
            rows={rows}
            selected={selected}
            openPath={openPath}
            dropTarget={dropTarget}
            onSelect={setSelected}
            onToggle={toggle}
            onOpen={openEntry}
            onRename={(entry) => setDialog({ kind: "rename", entry })}
            onDelete={(entry) => setDialog({ kind: "delete", entry })}
            onDownload={download}
          />
        )}
      </div>
      {openPath && (
        <FileEditor
          key={openPath}
          chatId={chatId}
          path={openPath}
          refreshMark={refreshMark}
          onDirtyChange={setDirty}
          onClose={() => requestOpen(null)}
        />
      )}

      {(dialog?.kind === "new-file" || dialog?.kind === "new-folder") && (
        <NameDialog
          title={dialog.kind === "new-file" ? "New file" : "New folder"}
          label={`Name (in ${dialog.dir ? `${dialog.dir}/` : "the workspace"})`}
          initial=""
          confirmLabel="Create"
          problem={(name) => nameProblem(name.trim(), siblingsOf(dialog.dir))}
          busy={busy}
          error={dialogError}
          onConfirm={(name) => void create(dialog.kind as "new-file" | "new-folder", dialog.dir, name)}
          onCancel={closeDialog}
        />
      )}
      {dialog?.kind === "rename" && (
        <NameDialog
          title={`Rename “${dialog.entry.name}”`}
          label="New name"
          initial={dialog.entry.name}
          confirmLabel="Rename"
          problem={(name) => (name.trim() === dialog.entry.name ? null : nameProblem(name.trim(), siblingsOf(parentOf(dialog.entry.path))))}
          busy={busy}
          error={dialogError}
          onConfirm={(name) => void rename(dialog.entry, name)}
          onCancel={closeDialog}
        />
      )}
      <ConfirmDialog
        open={dialog?.kind === "delete"}
        title={dialog?.kind === "delete" ? `Delete “${dialog.entry.name}”?` : "Delete?"}
        confirmLabel="Delete"
        danger
        busy={busy}
        onConfirm={() => dialog?.kind === "delete" && void remove(dialog.entry)}
        onCancel={closeDialog}
      >
        {dialog?.kind === "delete" && (
          <>
            <p>
              {isDir(dialog.entry) ? (
                <>
                  The folder <code>{dialog.entry.path}</code> and everything in it will be deleted from the sandbox.
                </>
              ) : (
                <>
                  <code>{dialog.entry.path}</code> will be deleted from the sandbox.
                </>
              )}{" "}
              This cannot be undone.
            </p>
            {dialogError && <p className="form-error">{dialogError}</p>}
          </>
        )}
      </ConfirmDialog>
      <ConfirmDialog
        open={replaceFor !== null}
        title="Replace existing files?"
        confirmLabel="Replace"
        danger
        onConfirm={() => {
          const pending = replaceFor;
          setReplaceFor(null);
          if (pending) void uploadNow(pending.files, pending.dir);
        }}
        onCancel={() => setReplaceFor(null)}
      >
        <p>
          {replaceFor?.names.map((name, i) => (
            <span key={name}>
              {i > 0 && ", "}
              <code>{name}</code>
            </span>
          ))}{" "}
          already {replaceFor?.names.length === 1 ? "exists" : "exist"} in {replaceFor?.dir || "the workspace"}. Uploaded files replace those
          of the same name.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={discardFor !== null}
        title="Discard unsaved changes?"
        confirmLabel="Discard"
        danger
        onConfirm={() => {
          setDirty(false);
          setOpenPath(discardFor?.next ?? null);
          setDiscardFor(null);
        }}
        onCancel={() => setDiscardFor(null)}
      >
        <p>
          <code>{openPath ? baseName(openPath) : ""}</code> has changes that are not saved. They will be lost.
        </p>
      </ConfirmDialog>
    </div>
  );
}
