// One terminal tab: xterm.js on a TerminalConnection. This module (and xterm with it) is
// loaded only when a terminal is first shown, so the first visit does not download it.
import { FitAddon } from "@xterm/addon-fit";
import { Terminal, type ITheme } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { sandboxKeys } from "@/features/sandbox/api/sandbox";
import { probeChat, terminalUrl } from "../api/terminal";
import { TerminalConnection, type TerminalStatus } from "../model/connection";

const light: ITheme = {
  background: "#ffffff",
  foreground: "#1b1e24",
  cursor: "#2f6fed",
  selectionBackground: "#c9dafc",
  black: "#1b1e24",
  red: "#c62f3b",
  green: "#1f8a4c",
  yellow: "#a86200",
  blue: "#2f6fed",
  magenta: "#a626a4",
  cyan: "#0e7c86",
  white: "#5b6270",
  brightBlack: "#5b6270",
  brightRed: "#d8444f",
  brightGreen: "#26a35b",
  brightYellow: "#c18401",
  brightBlue: "#4078f2",
  brightMagenta: "#b541b3",
  brightCyan: "#1597a2",
  brightWhite: "#1b1e24",
};

const dark: ITheme = {
  background: "#101216",
  foreground: "#e6e8ec",
  cursor: "#7aa5ff",
  selectionBackground: "#2d3f66",
};

const themeNow = (): ITheme => (document.documentElement.dataset.theme === "dark" ? dark : light);

const NOTICE = (text: string) => `\r\n\x1b[2m[${text}]\x1b[0m\r\n`;

function statusLabel(status: TerminalStatus): string {
  switch (status.kind) {
    case "connecting":
      return "Connecting…";
    case "open":
      return "Connected";
    case "reconnecting":
      return "Connection lost; reconnecting…";
    case "exited":
      return status.code === null ? "The shell has ended." : `The shell exited (code ${status.code}).`;
    case "superseded":
      return "This shell is open in another tab or window.";
    case "failed":
      return status.message;
  }
}

export default function TerminalView({
  chatId,
  sessionId,
  active,
  onSession,
}: {
  chatId: string;
  sessionId: string | null;
  active: boolean;
  onSession: (sessionId: string | null) => void;
}) {
  const queryClient = useQueryClient();
  const host = useRef<HTMLDivElement>(null);
  const terminal = useRef<Terminal | null>(null);
  const connection = useRef<TerminalConnection | null>(null);
  const [status, setStatus] = useState<TerminalStatus>({ kind: "connecting" });
  const [message, setMessage] = useState<string | null>(null);
  // The first session id only: later changes come from this connection itself.
  const initialSession = useRef(sessionId);
  const onSessionRef = useRef(onSession);
  onSessionRef.current = onSession;

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      scrollback: 5000,
      theme: themeNow(),
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(element);
    terminal.current = term;
    const conn = new TerminalConnection({
      url: (params) => terminalUrl(chatId, params),
      open: (url) => new WebSocket(url),
      probe: () => probeChat(chatId),
      sessionId: initialSession.current,
      onOutput: (data) => term.write(data),
      onReset: () => term.reset(),
      onStatus: (next) => {
        setStatus(next);
        if (next.kind === "connecting" || next.kind === "reconnecting") setMessage(null);
        // A new shell starts (or wakes) the sandbox: show its status now, not at the next poll.
        if (next.kind === "open") void queryClient.invalidateQueries({ queryKey: sandboxKeys.detail(chatId) });
        if (next.kind === "exited") {
          term.write(NOTICE(`${statusLabel(next)} Press Enter to start a new one.`));
        }
      },
      onSession: (id) => onSessionRef.current(id),
      onNotice: (notice) => {
        if (notice.kind === "new_shell") {
          term.write(NOTICE("The previous shell had ended while the connection was down; this is a new one."));
          setMessage("The previous shell had ended; a new one was opened.");
        } else if (notice.kind === "reconnected") {
          setMessage("Reconnected to the same shell.");
        } else {
          setMessage(notice.message);
        }
      },
    });
    connection.current = conn;
    term.onData((data) => conn.input(data));
    term.onResize(({ cols, rows }) => conn.resize(cols, rows));

    // Fit to the panel whenever its size changes; a hidden tab has no size and is left alone.
    let frame = 0;
    const refit = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        if (element.clientWidth > 0 && element.clientHeight > 0) fit.fit();
      });
    };
    const observer = new ResizeObserver(refit);
    observer.observe(element);
    if (element.clientWidth > 0 && element.clientHeight > 0) fit.fit();
    conn.start(term.cols, term.rows);

    const themeWatch = new MutationObserver(() => {
      term.options.theme = themeNow();
    });
    themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    const online = () => conn.reconnectNow();
    const offline = () => conn.dropNow();
    window.addEventListener("online", online);
    window.addEventListener("offline", offline);
    return () => {
      window.removeEventListener("online", online);
      window.removeEventListener("offline", offline);
      themeWatch.disconnect();
      observer.disconnect();
      cancelAnimationFrame(frame);
      conn.dispose();
      term.dispose();
      terminal.current = null;
      connection.current = null;
    };
  }, [chatId, queryClient]);

  useEffect(() => {
    if (active) terminal.current?.focus();
  }, [active]);

  // A notice is news for a moment, not a state.
  useEffect(() => {
    if (!message) return;
    const timer = setTimeout(() => setMessage(null), 8000);
    return () => clearTimeout(timer);
  }, [message]);

  const conn = connection.current;
  return (
    <div className="terminal-view" hidden={!active} data-status={status.kind}>
      <div className={`terminal-status terminal-${status.kind}`} role="status">
        <span className="connection-dot" aria-hidden />
        <span className="terminal-status-text">{message && status.kind === "open" ? message : statusLabel(status)}</span>
        {(status.kind === "exited" || status.kind === "failed") && (
          <button type="button" className="link" onClick={() => conn?.restart()}>
            New shell
          </button>
        )}
        {status.kind === "superseded" && (
          <button type="button" className="link" onClick={() => conn?.takeOver()}>
            Use it here
          </button>
        )}
      </div>
      <div className="terminal-host" ref={host} />
    </div>
  );
}
