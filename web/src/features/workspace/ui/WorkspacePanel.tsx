// The panels beside the conversation: terminals, files and port previews of the chat's sandbox
// (with the sandbox's status above them), a repository chat's changes (diff, commit, push),
// and the checkpoint timeline (restore and fork).
// A panel is mounted on its first visit and then kept while the workspace is open, so that
// terminals keep their shells and the editor its unsaved text when the user switches tabs.
// On a phone the panel is a bottom sheet (styles.css) that Escape closes too.
import { useEffect, useRef, useState, type KeyboardEvent, type MutableRefObject, type PointerEvent } from "react";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { CloseIcon } from "@/shared/ui/icons";
import { usePhone } from "@/shared/lib/media";
import { useHasUnsavedFile } from "@/features/files/model/unsaved";
import "./workspace.css";
import { ChangesPanel } from "@/features/changes/ui/ChangesPanel";
import { CheckpointsPanel } from "@/features/checkpoints/ui/CheckpointsPanel";
import { FilesPanel } from "@/features/files/ui/FilesPanel";
import { PreviewPanel } from "@/features/preview/ui/PreviewPanel";
import { SandboxStatus } from "@/features/sandbox/ui/SandboxStatus";
import { TerminalPanel } from "@/features/terminal/ui/TerminalPanel";
import {
  clampWidth,
  useSetWorkspaceTab,
  useSetWorkspaceWidth,
  useWorkspaceTab,
  useWorkspaceWidth,
  type WorkspaceTab,
} from "../model/panel";
import { closesSheet } from "../model/sheet";

const TABS: { id: WorkspaceTab; label: string }[] = [
  { id: "terminal", label: "Terminal" },
  { id: "files", label: "Files" },
  { id: "preview", label: "Preview" },
  { id: "changes", label: "Changes" },
  { id: "checkpoints", label: "Checkpoints" },
];

/** The drag handle on the panel's left edge; arrow keys move it too. */
function ResizeHandle() {
  const width = useWorkspaceWidth();
  const setWidth = useSetWorkspaceWidth();
  const drag = useRef<{ x: number; width: number } | null>(null);
  const onPointerDown = (event: PointerEvent<HTMLDivElement>) => {
    event.preventDefault();
    event.currentTarget.setPointerCapture(event.pointerId);
    drag.current = { x: event.clientX, width };
  };
  const onPointerMove = (event: PointerEvent<HTMLDivElement>) => {
    if (!drag.current) return;
    setWidth(clampWidth(drag.current.width + drag.current.x - event.clientX, window.innerWidth));
  };
  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const step = event.shiftKey ? 80 : 20;
    if (event.key === "ArrowLeft") setWidth(clampWidth(width + step, window.innerWidth));
    else if (event.key === "ArrowRight") setWidth(clampWidth(width - step, window.innerWidth));
    else return;
    event.preventDefault();
  };
  return (
    <div
      className="workspace-resize"
      role="separator"
      aria-orientation="vertical"
      aria-label="Resize the workspace panel"
      aria-valuenow={width}
      tabIndex={0}
      onPointerDown={onPointerDown}
      onPointerMove={onPointerMove}
      onPointerUp={() => (drag.current = null)}
      onPointerCancel={() => (drag.current = null)}
      onKeyDown={onKeyDown}
    />
  );
}

/** `closeRef` gets the panel's own close (which asks about an unsaved file) for the chat's use. */
export function WorkspacePanel({ chatId, onClose, closeRef }: { chatId: string; onClose: () => void; closeRef?: MutableRefObject<(() => void) | null> }) {
  const active = useWorkspaceTab();
  const setActive = useSetWorkspaceTab();
  const width = useWorkspaceWidth();
  const unsaved = useHasUnsavedFile(chatId);
  const [confirmClose, setConfirmClose] = useState(false);
  const requestClose = () => (unsaved ? setConfirmClose(true) : onClose());
  const latestClose = useRef(requestClose);
  latestClose.current = requestClose;
  useEffect(() => {
    if (!closeRef) return;
    closeRef.current = () => latestClose.current();
    return () => {
      closeRef.current = null;
    };
  }, [closeRef]);
  const phone = usePhone();
  // Captured before the conversation's own Escape (which stops a running turn) and taken from
  // it: on a phone, Escape first puts the sheet away.
  useEffect(() => {
    if (!phone) return;
    const onKey = (event: globalThis.KeyboardEvent) => {
      const target = event.target instanceof Element ? event.target : null;
      if (!closesSheet(event.key, target, event.defaultPrevented || event.isComposing) || document.querySelector("dialog[open]")) return;
      event.preventDefault();
      latestClose.current();
    };
    document.addEventListener("keydown", onKey, true);
    return () => document.removeEventListener("keydown", onKey, true);
  }, [phone]);
  const [visited, setVisited] = useState<Set<WorkspaceTab>>(() => new Set([active]));
  useEffect(() => {
    setVisited((seen) => (seen.has(active) ? seen : new Set([...seen, active])));
  }, [active]);

  return (
    <aside className="workspace" aria-label="Workspace" style={{ width }}>
      <ResizeHandle />
      <div className="workspace-tabs" role="tablist">
        {TABS.map((p) => (
          <button
            key={p.id}
            type="button"
            role="tab"
            id={`workspace-tab-${p.id}`}
            aria-selected={p.id === active}
            aria-controls={`workspace-panel-${p.id}`}
            className={p.id === active ? "tab active" : "tab"}
            onClick={() => setActive(p.id)}
          >
            {p.label}
          </button>
        ))}
        <button type="button" className="icon-btn" aria-label="Close the workspace panel" onClick={requestClose}>
          <CloseIcon />
        </button>
      </div>
      <SandboxStatus chatId={chatId} />
      <div className="workspace-body" role="tabpanel" id={`workspace-panel-${active}`} aria-labelledby={`workspace-tab-${active}`}>
        {visited.has("terminal") && <TerminalPanel chatId={chatId} visible={active === "terminal"} />}
        {visited.has("files") && <FilesPanel chatId={chatId} visible={active === "files"} />}
        {visited.has("preview") && <PreviewPanel chatId={chatId} visible={active === "preview"} />}
        {visited.has("changes") && <ChangesPanel chatId={chatId} visible={active === "changes"} />}
        {visited.has("checkpoints") && <CheckpointsPanel chatId={chatId} visible={active === "checkpoints"} />}
      </div>
      <ConfirmDialog
        open={confirmClose}
        title="Discard unsaved changes?"
        confirmLabel="Close and discard"
        danger
        onConfirm={() => {
          setConfirmClose(false);
          onClose();
        }}
        onCancel={() => setConfirmClose(false)}
      >
        <p>The open file has changes that are not saved. Closing the workspace panel loses them.</p>
      </ConfirmDialog>
    </aside>
  );
}
