// The Preview tab: the ports listening in the chat's sandbox (its dev servers), each opened in
// a new browser tab or in the panel's own frame, with a path bar, Reload and a phone-width
// toggle. When previews share agentbox's origin (no --preview-domain), it says that a
// previewed app can read the session. Links are fetched when used: each is signed for a
// minute and sets the preview's cookie, so the frame and the tab reach the app without
// agentbox's token.
import { useState, type FormEvent } from "react";
import { ApiError } from "@/shared/api/client";
import { Button } from "@/shared/ui/Button";
import { RefreshIcon } from "@/shared/ui/icons";
import type { PortInfo } from "@/shared/api/types";
import { useOpenPort, usePorts } from "../api/ports";
import { absoluteLink, pathOf, portTitle, previewAddress, previewRoot } from "../model/preview";

interface Viewing {
  port: number;
  root: string;
  /** What the frame shows; the first address is the signed link, which redirects to the root. */
  src: string;
  path: string;
  /** Bumped by Reload, so that the frame loads again even at the same address. */
  n: number;
}

export function PreviewPanel({ chatId, visible }: { chatId: string; visible: boolean }) {
  const ports = usePorts(chatId, visible);
  const open = useOpenPort(chatId);
  const [viewing, setViewing] = useState<Viewing | null>(null);
  const [typed, setTyped] = useState("/");
  // A phone's width (390 CSS pixels, a common one), to see a responsive layout's small form.
  const [phone, setPhone] = useState(false);
  const error = open.error instanceof ApiError ? open.error.message : open.error ? "The preview could not be opened." : null;

  const link = async (port: number) => absoluteLink((await open.mutateAsync(port)).url, window.location.origin);

  const openInTab = (port: number) => {
    // Opened now, inside the click, or a popup blocker stops it; sent on once the link is there.
    const tab = window.open("about:blank", "_blank");
    link(port).then(
      (url) => {
        if (!tab) return;
        tab.opener = null;
        tab.location.href = url;
      },
      () => tab?.close(),
    );
  };

  const view = async (port: number) => {
    const url = await link(port);
    setTyped("/");
    setViewing({ port, root: previewRoot(url), src: url, path: "/", n: 0 });
  };

  const go = (event: FormEvent) => {
    event.preventDefault();
    if (!viewing) return;
    const src = previewAddress(viewing.root, typed);
    const path = pathOf(viewing.root, src);
    setTyped(path);
    setViewing({ ...viewing, src, path, n: viewing.n + 1 });
  };

  if (viewing) {
    return (
      <div className="preview-panel" hidden={!visible}>
        <form className="files-toolbar preview-bar" onSubmit={go} aria-label={`Preview of port ${viewing.port}`}>
          <Button variant="ghost" onClick={() => setViewing(null)}>
            Ports
          </Button>
          <span className="muted small">:{viewing.port}</span>
          <input className="preview-path" aria-label="Path" value={typed} onChange={(e) => setTyped(e.target.value)} spellCheck={false} />
          <Button type="submit" variant="ghost">
            Go
          </Button>
          <button type="button" className="icon-btn" aria-label="Reload the preview" onClick={() => setViewing({ ...viewing, n: viewing.n + 1 })}>
            <RefreshIcon />
          </button>
          <Button variant="ghost" aria-pressed={phone} onClick={() => setPhone(!phone)}>
            Phone width
          </Button>
          <Button variant="ghost" onClick={() => openInTab(viewing.port)}>
            New tab
          </Button>
        </form>
        <div className={phone ? "preview-stage phone" : "preview-stage"}>
          <iframe key={viewing.n} className="preview-frame" title={`Port ${viewing.port}`} src={viewing.src} />
        </div>
      </div>
    );
  }

  const data = ports.data;
  return (
    <div className="preview-panel" hidden={!visible}>
      {data && !data.origin_isolated && (
        <p className="preview-warning small" role="note">
          Previews share agentbox's address on this server (no preview domain is configured): a previewed app can read your agentbox session. Preview only what you trust.
        </p>
      )}
      {ports.isError && <div className="panel-empty">The sandbox's ports are not available.</div>}
      {data && data.ports.length === 0 && (
        <div className="panel-empty">
          <p>Nothing listens yet.</p>
          <p className="small">
            {data.running ? "Start a server in the sandbox (or ask the agent to); its port appears here." : "The sandbox is not running. A server the agent starts appears here."}
          </p>
        </div>
      )}
      {data && data.ports.length > 0 && (
        <ul className="preview-ports" aria-label="Listening ports">
          {data.ports.map((port: PortInfo) => (
            <li key={port.port} className="preview-port" data-port={port.port}>
              <span className="preview-port-name">{portTitle(port)}</span>
              <Button variant="ghost" disabled={open.isPending} onClick={() => void view(port.port)}>
                View
              </Button>
              <Button variant="ghost" disabled={open.isPending} onClick={() => openInTab(port.port)}>
                Open in new tab
              </Button>
            </li>
          ))}
        </ul>
      )}
      {error && <p className="bad small preview-error">{error}</p>}
    </div>
  );
}
