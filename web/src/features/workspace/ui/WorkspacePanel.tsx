// The panels beside the conversation. Each one follows an API that has not landed yet, so
// each says so plainly instead of pretending: the terminal and files come with the isolating
// sandbox, checkpoints with their own issue.
import { useState } from "react";
import { CloseIcon } from "@/shared/ui/icons";

const PANELS = [
  { id: "terminal", label: "Terminal", text: "A terminal into this chat's sandbox is not available yet. It arrives with the isolating sandbox and its terminal API." },
  { id: "files", label: "Files", text: "Browsing and editing the sandbox's files is not available yet. It arrives with the sandbox's files API." },
  { id: "checkpoints", label: "Checkpoints", text: "Checkpoints (restore and fork a turn) are not available yet. They arrive with the checkpoints API." },
] as const;

export function WorkspacePanel({ onClose }: { onClose: () => void }) {
  const [active, setActive] = useState<(typeof PANELS)[number]["id"]>("terminal");
  const panel = PANELS.find((p) => p.id === active) ?? PANELS[0];
  return (
    <aside className="workspace" aria-label="Workspace">
      <div className="workspace-tabs" role="tablist">
        {PANELS.map((p) => (
          <button key={p.id} type="button" role="tab" aria-selected={p.id === active} className={p.id === active ? "tab active" : "tab"} onClick={() => setActive(p.id)}>
            {p.label}
          </button>
        ))}
        <button type="button" className="icon-btn" aria-label="Close the workspace panel" onClick={onClose}>
          <CloseIcon />
        </button>
      </div>
      <div className="workspace-body" role="tabpanel">
        <p className="empty">
          <strong>Not available yet.</strong> {panel.text}
        </p>
      </div>
    </aside>
  );
}
