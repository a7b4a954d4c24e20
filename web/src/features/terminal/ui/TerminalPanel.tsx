// The terminals of a chat: a strip of tabs (up to the server's eight) over the shown terminal.
// Every tab stays mounted while the panel is open, hidden when not selected, so that its shell
// keeps running and its screen is there when the user comes back to it.
import { lazy, Suspense, useEffect } from "react";
import { Spinner } from "@/shared/ui/Spinner";
import { CloseIcon } from "@/shared/ui/icons";
import { MAX_TERMINALS, terminalActions, terminalTabCount, useChatTerminals } from "../model/tabs";

const TerminalView = lazy(() => import("./TerminalView"));

/** Chats whose terminal panel already opened its first terminal during this visit. */
const openedOnce = new Set<string>();

export function TerminalPanel({ chatId, visible }: { chatId: string; visible: boolean }) {
  const { tabs, active } = useChatTerminals(chatId);
  const actions = terminalActions(chatId);

  // The first visit to the panel opens a terminal; closing every tab leaves it empty.
  useEffect(() => {
    if (visible && terminalTabCount(chatId) === 0 && !openedOnce.has(chatId)) {
      openedOnce.add(chatId);
      terminalActions(chatId).add();
    }
  }, [chatId, visible]);

  return (
    <div className="terminal-panel" hidden={!visible}>
      <div className="terminal-tabs" role="tablist" aria-label="Terminals">
        {tabs.map((tab) => (
          <div key={tab.key} className={tab.key === active ? "terminal-tab active" : "terminal-tab"}>
            <button type="button" role="tab" aria-selected={tab.key === active} className="terminal-tab-name" onClick={() => actions.select(tab.key)}>
              {tab.title}
            </button>
            <button type="button" className="terminal-tab-close" aria-label={`Close ${tab.title}`} title="Close this terminal" onClick={() => actions.close(tab.key)}>
              <CloseIcon />
            </button>
          </div>
        ))}
        <button
          type="button"
          className="terminal-add"
          aria-label="New terminal"
          title={tabs.length >= MAX_TERMINALS ? `A chat can have ${MAX_TERMINALS} terminals at once` : "New terminal"}
          disabled={tabs.length >= MAX_TERMINALS}
          onClick={() => actions.add()}
        >
          +
        </button>
      </div>
      {tabs.length === 0 ? (
        <div className="panel-empty">
          <p>No terminal is open. A terminal is a shell in this chat's sandbox, where the agent works: the same files, the same tools.</p>
          <button type="button" className="btn btn-primary" onClick={() => actions.add()}>
            Open a terminal
          </button>
        </div>
      ) : (
        <Suspense
          fallback={
            <div className="panel-empty">
              <Spinner label="Loading the terminal" />
            </div>
          }
        >
          {tabs.map((tab) => (
            <TerminalView
              key={tab.key}
              chatId={chatId}
              sessionId={tab.sessionId}
              active={visible && tab.key === active}
              onSession={(sessionId) => terminalActions(chatId).setSession(tab.key, sessionId)}
            />
          ))}
        </Suspense>
      )}
    </div>
  );
}
