// The open file: loads it (refusing binary and huge files with the reason), shows it in the
// editor, saves it, says when there are unsaved changes, and notices when the file changed in
// the sandbox meanwhile (the agent or a terminal wrote it).
import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "@/shared/api/client";
import type { FileEntry } from "@/shared/api/types";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { CloseIcon } from "@/shared/ui/icons";
import { downloadFile, readFile, statPath, writeFile } from "../api/files";
import { BINARY_MESSAGE, classifyContent, languageFor, refusalFor } from "../model/document";
import { baseName } from "../model/tree";
import type { CodeEditorHandle } from "./CodeEditor";

const CodeEditor = lazy(() => import("./CodeEditor"));

type Loaded =
  | { state: "loading" }
  | { state: "refused"; message: string; entry: FileEntry | null }
  | { state: "error"; message: string }
  | { state: "ready"; text: string; entry: FileEntry };

const messageOf = (error: unknown) => (error instanceof ApiError ? error.message : "The file could not be read.");

/** Whether a file's listing says it changed since `entry` was read. */
const changedSince = (entry: FileEntry, now: FileEntry) => now.modified !== entry.modified || now.size !== entry.size;

export function FileEditor({
  chatId,
  path,
  refreshMark,
  onDirtyChange,
  onClose,
}: {
  chatId: string;
  path: string;
  /** Changes whenever the workspace may have changed; the open file is then checked. */
  refreshMark: number;
  onDirtyChange: (dirty: boolean) => void;
  onClose: () => void;
}) {
  const [loaded, setLoaded] = useState<Loaded>({ state: "loading" });
  const [dirty, setDirty] = useState(false);
  const [saving, setSaving] = useState(false);
  const [note, setNote] = useState<{ kind: "info" | "error" | "conflict"; text: string } | null>(null);
  const editor = useRef<CodeEditorHandle>(null);
  const dirtyRef = useRef(false);
  const loadedRef = useRef(loaded);
  loadedRef.current = loaded;

  const markDirty = useCallback(
    (value: boolean) => {
      dirtyRef.current = value;
      setDirty(value);
      onDirtyChange(value);
    },
    [onDirtyChange],
  );

  /** Reads the file: its listing first, so that huge or special files are never downloaded. */
  const load = useCallback(
    async (signal?: AbortSignal): Promise<Loaded> => {
      try {
        const entry = await statPath(chatId, path, signal);
        const refusal = refusalFor(entry);
        if (refusal) return { state: "refused", message: refusal, entry };
        const bytes = await readFile(chatId, path, signal);
        // A symlink's listing gives the link's size, not its target's: check what came.
        const tooLarge = refusalFor({ kind: "file", size: bytes.length });
        if (tooLarge) return { state: "refused", message: tooLarge, entry };
        const content = classifyContent(bytes);
        if (content.kind === "binary") return { state: "refused", message: BINARY_MESSAGE, entry };
        return { state: "ready", text: content.text, entry };
      } catch (error) {
        if (error instanceof DOMException && error.name === "AbortError") throw error;
        return { state: "error", message: messageOf(error) };
      }
    },
    [chatId, path],
  );

  useEffect(() => {
    const controller = new AbortController();
    setLoaded({ state: "loading" });
    setNote(null);
    markDirty(false);
    load(controller.signal).then(setLoaded, () => undefined);
    return () => controller.abort();
  }, [load, markDirty]);

  // The workspace may have changed: if this file did, reload it, or warn when that would
  // throw away unsaved work.
  useEffect(() => {
    if (refreshMark === 0) return;
    const current = loadedRef.current;
    if (current.state !== "ready") return;
    let cancelled = false;
    statPath(chatId, path)
      .then(async (now) => {
        if (cancelled || !changedSince(current.entry, now)) return;
        if (dirtyRef.current) {
          setNote({ kind: "conflict", text: "This file changed in the sandbox since you opened it. Saving will overwrite that change." });
          return;
        }
        const fresh = await load();
        if (cancelled || fresh.state !== "ready") return;
        editor.current?.replace(fresh.text);
        setLoaded(fresh);
        setNote({ kind: "info", text: "Reloaded: the file changed in the sandbox." });
      })
      .catch((error: unknown) => {
        if (!cancelled && error instanceof ApiError && error.status === 404) {
          setNote({ kind: "error", text: "This file no longer exists in the sandbox. Saving creates it again." });
        }
      });
    return () => {
      cancelled = true;
    };
  }, [refreshMark, chatId, path, load]);

  const save = useCallback(async () => {
    const handle = editor.current;
    if (!handle || saving) return;
    const { text, doc } = handle.snapshot();
    setSaving(true);
    try {
      const entry = await writeFile(chatId, path, new TextEncoder().encode(text));
      handle.markSaved(doc);
      setLoaded((current) => (current.state === "ready" ? { ...current, entry } : current));
      setNote({ kind: "info", text: "Saved." });
    } catch (error) {
      setNote({ kind: "error", text: `Not saved: ${messageOf(error)}` });
    } finally {
      setSaving(false);
    }
  }, [chatId, path, saving]);

  // Leaving the page with unsaved changes asks first.
  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const name = baseName(path);
  return (
    <section className="file-editor" aria-label={`Editor: ${path}`}>
      <header className="file-editor-head">
        <span className="file-editor-path" title={`/home/user/${path}`}>
          {path}
        </span>
        {dirty && (
          <span className="unsaved" title="Unsaved changes">
            ● Unsaved
          </span>
        )}
        {loaded.state === "ready" && (
          <Button variant={dirty ? "primary" : "secondary"} onClick={() => void save()} disabled={saving || !dirty} title="Save (Ctrl+S)">
            {saving ? "Saving…" : "Save"}
          </Button>
        )}
        <button type="button" className="icon-btn" aria-label="Close the file" title="Close the file" onClick={onClose}>
          <CloseIcon />
        </button>
      </header>
      {note && (
        <p className={`file-note file-note-${note.kind}`} role={note.kind === "info" ? "status" : "alert"}>
          {note.text}
        </p>
      )}
      <div className="file-editor-body">
        {loaded.state === "loading" && (
          <div className="panel-empty">
            <Spinner label="Opening the file" />
          </div>
        )}
        {loaded.state === "error" && (
          <div className="panel-empty">
            <p className="bad">{loaded.message}</p>
          </div>
        )}
        {loaded.state === "refused" && (
          <div className="panel-empty">
            <p>{loaded.message}</p>
            {loaded.entry && loaded.entry.kind !== "dir" && loaded.entry.kind !== "other" && (
              <Button onClick={() => void downloadFile(chatId, path, name).catch((error: unknown) => setNote({ kind: "error", text: messageOf(error) }))}>
                Download {name}
              </Button>
            )}
          </div>
        )}
        {loaded.state === "ready" && (
          <Suspense
            fallback={
              <div className="panel-empty">
                <Spinner label="Loading the editor" />
              </div>
            }
          >
            <CodeEditor ref={editor} key={path} text={loaded.text} language={languageFor(path)} label={`Contents of ${path}`} onDirty={markDirty} onSave={() => void save()} />
          </Suspense>
        )}
      </div>
    </section>
  );
}
