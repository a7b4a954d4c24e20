// The chat list: create, search (titles and message text, on the server), switch, rename,
// pin, archive, delete (after a confirmation), and each chat's status and latest words at a
// glance, in sections by date. Arrow keys move between chats; the list is a drawer on a phone.
import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import { ApiError } from "@/shared/api/client";
import type { Chat } from "@/shared/api/types";
import { chatPath, navigate } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { Spinner } from "@/shared/ui/Spinner";
import { useArchivedChats, useChatSearch, useChats, useCreateChat, useDeleteChat, useUpdateChat } from "../api/chats";
import { groupChats } from "../model/groups";
import { filterChats, useSearch, useSetSearch, useSetSidebarOpen, useSidebarOpen } from "../model/sidebar";
import { chatState } from "../model/attention";
import { ChatStatusDot } from "./ChatStatusDot";
import { ArchiveIcon, PencilIcon, PinIcon, TrashIcon } from "@/shared/ui/icons";

/** How long typing pauses before the search goes to the server. */
const SEARCH_DELAY_MS = 250;

function useDebounced(value: string, delay: number): string {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delay);
    return () => clearTimeout(timer);
  }, [value, delay]);
  return settled;
}

export function Sidebar({ activeChatId, footer }: { activeChatId: string | null; footer: React.ReactNode }) {
  const chats = useChats();
  const createChat = useCreateChat();
  const search = useSearch();
  const setSearch = useSetSearch();
  const open = useSidebarOpen();
  const setOpen = useSetSidebarOpen();
  const [deleting, setDeleting] = useState<Chat | null>(null);
  const deleteChat = useDeleteChat();
  const listRef = useRef<HTMLDivElement>(null);
  const [showArchived, setShowArchived] = useState(false);
  const searching = search.trim() !== "";
  const found = useChatSearch(useDebounced(search, SEARCH_DELAY_MS));
  const archived = useArchivedChats(showArchived && !searching);

  const startChat = () =>
    createChat.mutate(
      {},
      {
        onSuccess: (chat) => {
          setOpen(false);
          navigate(chatPath(chat.id));
        },
      },
    );

  // While the server's answer is on its way, the titles already loaded are filtered here.
  const results = searching ? (found.data ?? filterChats(chats.data ?? [], search)) : [];
  const renderChats = (list: Chat[]) =>
    list.map((chat) => (
      <ChatItem key={chat.id} chat={chat} active={chat.id === activeChatId} onDelete={() => setDeleting(chat)} onOpen={() => setOpen(false)} />
    ));

  const moveFocus = (event: KeyboardEvent) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const links = Array.from(listRef.current?.querySelectorAll<HTMLAnchorElement>("a.chat-link") ?? []);
    const index = links.indexOf(document.activeElement as HTMLAnchorElement);
    const next = links[event.key === "ArrowDown" ? index + 1 : Math.max(index - 1, 0)];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  };

  return (
    <>
      <aside className={`sidebar ${open ? "sidebar-open" : ""}`} aria-label="Chats">
        <div className="sidebar-head">
          <span className="brand">
            <img src="/favicon.svg" alt="" width={22} height={22} /> agentbox
          </span>
          <Button variant="primary" onClick={startChat} disabled={createChat.isPending} title="New chat (Alt+N)">
            + New chat
          </Button>
        </div>
        <input
          className="search"
          type="search"
          placeholder="Search chats"
          aria-label="Search chats"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "ArrowDown") listRef.current?.querySelector<HTMLAnchorElement>("a.chat-link")?.focus();
          }}
        />
        {createChat.error && (
          <p className="form-error" role="alert">
            {createChat.error instanceof ApiError ? createChat.error.message : "The chat could not be created."}
          </p>
        )}
        <nav className="chat-list" onKeyDown={moveFocus}>
          {chats.isPending ? (
            <Spinner label="Loading chats" />
          ) : chats.isError && !chats.data ? (
            <p className="empty">The chats could not be loaded. {chats.error instanceof ApiError ? chats.error.message : ""}</p>
          ) : searching ? (
            results.length === 0 ? (
              <p className="empty">{found.isFetching ? "Searching…" : `No chat matches “${search}”.`}</p>
            ) : (
              <div ref={listRef}>
                <section className="chat-group" aria-label="Search results">
                  <h3 className="chat-group-name">Results</h3>
                  <ul>{renderChats(results)}</ul>
                </section>
              </div>
            )
          ) : (
            <div ref={listRef}>
              {(chats.data ?? []).length === 0 && <p className="empty">No chats yet. Start one with “New chat”.</p>}
              {groupChats(chats.data ?? []).map((group) => (
                <section key={group.name} className="chat-group" aria-label={group.name}>
                  <h3 className="chat-group-name">{group.name}</h3>
                  <ul>{renderChats(group.chats)}</ul>
                </section>
              ))}
              <button type="button" className="link-btn archived-toggle" aria-expanded={showArchived} onClick={() => setShowArchived(!showArchived)}>
                {showArchived ? "Hide archived chats" : "Show archived chats"}
              </button>
              {showArchived && (
                <section className="chat-group" aria-label="Archived">
                  <h3 className="chat-group-name">Archived</h3>
                  {archived.isPending ? (
                    <Spinner label="Loading archived chats" />
                  ) : (archived.data ?? []).length === 0 ? (
                    <p className="empty">No archived chats.</p>
                  ) : (
                    <ul>{renderChats(archived.data ?? [])}</ul>
                  )}
                </section>
              )}
            </div>
          )}
        </nav>
        <div className="sidebar-foot">{footer}</div>
      </aside>
      {open && <div className="scrim" onClick={() => setOpen(false)} aria-hidden />}
      <ConfirmDialog
        open={deleting !== null}
        title="Delete this chat?"
        confirmLabel="Delete"
        danger
        busy={deleteChat.isPending}
        onCancel={() => setDeleting(null)}
        onConfirm={() => {
          const chat = deleting;
          if (!chat) return;
          deleteChat.mutate(chat.id, {
            onSuccess: () => {
              setDeleting(null);
              if (chat.id === activeChatId) navigate("/");
            },
          });
        }}
      >
        <p>
          “{deleting?.title}” and its whole history will be deleted, and its sandbox with every file in it. This cannot be undone.
        </p>
        {deleteChat.error && <p className="form-error">{deleteChat.error instanceof ApiError ? deleteChat.error.message : "Deleting failed."}</p>}
      </ConfirmDialog>
    </>
  );
}

function ChatItem({ chat, active, onDelete, onOpen }: { chat: Chat; active: boolean; onDelete: () => void; onOpen: () => void }) {
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(chat.title);
  const updateChat = useUpdateChat();
  // Escape cancels; the blur that follows when the input goes away must not save after all.
  const cancelled = useRef(false);

  const startRenaming = () => {
    cancelled.current = false;
    setTitle(chat.title);
    setRenaming(true);
  };

  const save = () => {
    if (cancelled.current) return;
    const next = title.trim();
    if (!next || next === chat.title) {
      setRenaming(false);
      setTitle(chat.title);
      return;
    }
    updateChat.mutate({ chatId: chat.id, title: next }, { onSuccess: () => setRenaming(false) });
  };

  if (renaming) {
    return (
      <li className="chat-item">
        <input
          className="rename"
          aria-label="Chat title"
          value={title}
          maxLength={200}
          autoFocus
          onChange={(e) => setTitle(e.target.value)}
          onBlur={save}
          onKeyDown={(e) => {
            if (e.key === "Enter") save();
            if (e.key === "Escape") {
              cancelled.current = true;
              setTitle(chat.title);
              setRenaming(false);
            }
          }}
        />
      </li>
    );
  }
  return (
    <li className={`chat-item ${active ? "active" : ""}`}>
      <a
        className="chat-link"
        href={chatPath(chat.id)}
        aria-current={active ? "page" : undefined}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          onOpen();
          navigate(chatPath(chat.id));
        }}
        onKeyDown={(e) => {
          if (e.key === "F2") {
            e.preventDefault();
            startRenaming();
          }
          if (e.key === "Delete") {
            e.preventDefault();
            onDelete();
          }
        }}
      >
        <ChatStatusDot state={chatState(chat)} />
        <span className="chat-text">
          <span className="chat-title">
            {chat.pinned && <span className="sr-only">Pinned: </span>}
            {chat.title}
          </span>
          {chat.preview && <span className="chat-preview">{chat.preview}</span>}
        </span>
      </a>
      <span className="chat-actions">
        <button
          type="button"
          className={`icon-btn ${chat.pinned ? "on" : ""}`}
          aria-label={`${chat.pinned ? "Unpin" : "Pin"} “${chat.title}”`}
          aria-pressed={chat.pinned}
          title={chat.pinned ? "Unpin" : "Pin"}
          onClick={() => updateChat.mutate({ chatId: chat.id, pinned: !chat.pinned })}
        >
          <PinIcon />
        </button>
        <button
          type="button"
          className="icon-btn"
          aria-label={`${chat.archived ? "Unarchive" : "Archive"} “${chat.title}”`}
          title={chat.archived ? "Unarchive" : "Archive"}
          onClick={() => updateChat.mutate({ chatId: chat.id, archived: !chat.archived })}
        >
          <ArchiveIcon />
        </button>
        <button type="button" className="icon-btn" aria-label={`Rename “${chat.title}”`} title="Rename (F2)" onClick={startRenaming}>
          <PencilIcon />
        </button>
        <button type="button" className="icon-btn" aria-label={`Delete “${chat.title}”`} title="Delete (Del)" onClick={onDelete}>
          <TrashIcon />
        </button>
      </span>
    </li>
  );
}
