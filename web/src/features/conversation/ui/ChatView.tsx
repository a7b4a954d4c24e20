// One open chat: its header (title, connection, workspace toggle), the conversation kept live
// by the chat's stream (with "jump to latest" when scrolled up, Esc to stop a running turn,
// and finished replies announced to screen readers), and the composer. A request waiting for
// the user shows on the workspace toggle, and on a phone in a strip that stays above the
// composer or the workspace sheet and leads to it.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useLayoutEffect, useRef, useState } from "react";
import { ApiError } from "@/shared/api/client";
import { navigate } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { useChat } from "@/features/chats/api/chats";
import { useSetSidebarOpen } from "@/features/chats/model/sidebar";
import { chatState } from "@/features/chats/model/attention";
import { ChatStatusDot } from "@/features/chats/ui/ChatStatusDot";
import { Composer } from "@/features/composer/ui/Composer";
import { QueuedPrompts } from "@/features/queue/ui/QueuedPrompts";
import { ChatSettingsButton } from "@/features/settings/ui/SettingsButtons";
import { useOpenOnFileActivity, useSetWorkspaceOpen, useWorkspaceOpen } from "@/features/workspace/model/panel";
import { usePhone } from "@/shared/lib/media";
import { conversationQuery, useInterrupt } from "../api/conversation";
import { setConnectionState } from "../model/connection";
import { runningMessage, type MessageView } from "../model/conversation";
import { announcement } from "../model/live";
import { ChatStream } from "../model/stream";
import { ChatFigures } from "./ChatFigures";
import { ConnectionIndicator } from "./ConnectionIndicator";
import { MessageList } from "./MessageList";
import { MenuIcon, PanelIcon } from "@/shared/ui/icons";

// The workspace (terminals, files, editor) is a chunk of its own, loaded when first opened or
// when the pointer reaches its toggle, so that the first visit does not download it.
const loadWorkspace = () => import("@/features/workspace/ui/WorkspacePanel");
const WorkspacePanel = lazy(() => loadWorkspace().then((m) => ({ default: m.WorkspacePanel })));

// Only a phone with a request waiting shows the strip, so it loads then.
const PendingStrip = lazy(() => import("./PendingStrip"));

const noMessages: MessageView[] = [];

function useChatStream(chatId: string): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    const stream = new ChatStream({ chatId, queryClient, onState: setConnectionState });
    stream.start();
    return () => stream.stop();
  }, [chatId, queryClient]);
}

/**
 * Keeps the view at the bottom while new content arrives, unless the user scrolled up; then
 * `away` is set (for the "jump to latest" button) and `jump` goes back down.
 */
function useStickToBottom(dependency: unknown) {
  const ref = useRef<HTMLDivElement>(null);
  const stuck = useRef(true);
  const [away, setAway] = useState(false);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const onScroll = () => {
      stuck.current = element.scrollHeight - element.scrollTop - element.clientHeight < 80;
      setAway(!stuck.current);
    };
    element.addEventListener("scroll", onScroll, { passive: true });
    return () => element.removeEventListener("scroll", onScroll);
  }, []);
  useLayoutEffect(() => {
    const element = ref.current;
    if (element && stuck.current) element.scrollTop = element.scrollHeight;
  }, [dependency]);
  const jump = () => {
    const element = ref.current;
    if (!element) return;
    stuck.current = true;
    setAway(false);
    element.scrollTop = element.scrollHeight;
  };
  return { ref, away, jump };
}

/** Esc stops the running turn, unless a dialog or a menu has it (they close on Esc). */
function useEscapeStops(running: boolean, stop: () => void) {
  const latest = useRef(stop);
  latest.current = stop;
  useEffect(() => {
    if (!running) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
      if (document.querySelector("dialog[open]")) return;
      event.preventDefault();
      latest.current();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [running]);
}

/** The text a screen reader hears when a turn of this chat ends while it is open. */
function useAnnouncement(messages: readonly MessageView[]): string {
  const [text, setText] = useState("");
  const running = useRef(new Set<string>());
  useEffect(() => {
    for (const message of messages) {
      if (message.role !== "assistant") continue;
      if (message.status === "in_progress") running.current.add(message.id);
      else if (running.current.delete(message.id)) setText(announcement(message) ?? "");
    }
  }, [messages]);
  return text;
}

export function ChatView({ chatId }: { chatId: string }) {
  const queryClient = useQueryClient();
  const chat = useChat(chatId);
  const conversation = useQuery(conversationQuery(queryClient, chatId));
  const setSidebarOpen = useSetSidebarOpen();
  const workspaceOpen = useWorkspaceOpen(chatId);
  const setWorkspaceOpen = useSetWorkspaceOpen(chatId);
  const phone = usePhone();
  useChatStream(chatId);
  const scroller = useStickToBottom(conversation.data);
  const interrupt = useInterrupt(chatId);
  const current = runningMessage(conversation.data);
  const running = current !== undefined;
  const messages = conversation.data?.messages ?? noMessages;
  useEscapeStops(running && !interrupt.isPending, () => interrupt.mutate());
  const announced = useAnnouncement(messages);
  useOpenOnFileActivity(chatId, conversation.data?.messages);
  // The open panel's own close, which asks before dropping an unsaved file.
  const closePanel = useRef<(() => void) | null>(null);

  const missing = (chat.error instanceof ApiError && chat.error.status === 404) || (conversation.error instanceof ApiError && conversation.error.status === 404);
  if (missing) {
    return (
      <section className="chat-view">
        <div className="empty-state">
          <h2>This chat does not exist</h2>
          <p>It may have been deleted. Pick another chat or start a new one.</p>
          <Button onClick={() => navigate("/")}>Back</Button>
        </div>
      </section>
    );
  }

  // The stream knows first when the open chat starts or stops waiting for an answer.
  const waiting = current?.blocks.filter((b) => b.kind === "permission" && b.resolved === null).length ?? 0;
  return (
    <div className="chat-area">
      <section className="chat-view" aria-label={chat.data?.title ?? "Chat"}>
        <header className="chat-header">
          <button type="button" className="icon-btn menu-btn" aria-label="Show chats" onClick={() => setSidebarOpen(true)}>
            <MenuIcon />
          </button>
          {chat.data && <ChatStatusDot state={chatState({ ...chat.data, status: running ? "running" : "idle", pending_requests: waiting })} />}
          <h1 className="chat-heading">{chat.data?.title ?? "…"}</h1>
          <ConnectionIndicator />
          {chat.data && <ChatSettingsButton chat={chat.data} />}
          <button
            type="button"
            className={`workspace-toggle ${workspaceOpen ? "active" : ""}`}
            aria-pressed={workspaceOpen}
            aria-label="Workspace panel"
            title="Terminal, files, previews and checkpoints"
            onClick={() => setWorkspaceOpen(!workspaceOpen)}
            onPointerEnter={() => void loadWorkspace()}
            onFocus={() => void loadWorkspace()}
          >
            <PanelIcon /> <span className="workspace-toggle-label">Workspace</span>
            {waiting > 0 && <span className="workspace-badge">{waiting}</span>}
          </button>
        </header>
        <div className="conversation" ref={scroller.ref}>
          {conversation.isPending ? (
            <div className="empty-state">
              <Spinner label="Loading the conversation" />
            </div>
          ) : conversation.isError && !conversation.data ? (
            <div className="empty-state">
              <p>The conversation could not be loaded. {conversation.error instanceof ApiError ? conversation.error.message : ""}</p>
              <Button onClick={() => void conversation.refetch()}>Try again</Button>
            </div>
          ) : messages.length === 0 ? (
            <div className="empty-state">
              <h2>Start the conversation</h2>
              <p>Write what the agent should do below and press Enter. It works in this chat's own sandbox: it can run commands and create and edit files there.</p>
            </div>
          ) : (
            <MessageList chatId={chatId} messages={messages} running={running} />
          )}
        </div>
        {scroller.away && (
          <button type="button" className="jump-latest" onClick={scroller.jump}>
            ↓ Jump to latest
          </button>
        )}
        <div className="sr-only" aria-live="polite" role="log" aria-label="Replies">
          {announced}
        </div>
        {messages.length > 0 && <ChatFigures chatId={chatId} messages={messages} />}
        {chat.data && <QueuedPrompts chatId={chatId} running={running} />}
        {phone && waiting > 0 && (
          <Suspense fallback={null}>
            <PendingStrip conversation={scroller.ref} sheetOpen={workspaceOpen} closeSheet={() => (closePanel.current ?? (() => setWorkspaceOpen(false)))()} />
          </Suspense>
        )}
        {chat.data && <Composer chat={chat.data} running={running} />}
      </section>
      {workspaceOpen && (
        <Suspense fallback={<aside className="workspace" aria-label="Workspace" aria-busy="true" />}>
          <WorkspacePanel chatId={chatId} onClose={() => setWorkspaceOpen(false)} closeRef={closePanel} />
        </Suspense>
      )}
    </div>
  );
}
