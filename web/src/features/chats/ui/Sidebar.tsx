// The chat list: create, search, switch, rename, delete (after a confirmation), and each chat's
// status at a glance. Arrow keys move between chats; the list is a drawer on a phone.
import { useRef, useState, type KeyboardEvent } from "react";
import { ApiError } from "@/shared/api/client";
import type { Chat } from "@/shared/api/types";
import { chatPath, navigate } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { ConfirmDialog } from "@/shared/ui/Dialog";
import { Spinner } from "@/shared/ui/Spinner";
import { useChats, useCreateChat, useDeleteChat, useUpdateChat } from "../api/chats";
import { filterChats, useSearch, useSetSearch, useSetSidebarOpen, useSidebarOpen } from "../model/sidebar";
import { chatState } from "../model/attention";
import { ChatStatusDot } from "./ChatStatusDot";
import { PencilIcon, TrashIcon } from "@/shared/ui/icons";

export function Sidebar({ activeChatId, footer }: { activeChatId: string | null; footer: React.ReactNode }) {
  const chats = useChats();
  const createChat = useCreateChat();
  const search = useSearch();
  const setSearch = useSetSearch();
  const open = useSidebarOpen();
  const setOpen = useSetSidebarOpen();
  const [deleting, setDeleting] = useState<Chat | null>(null);
  const deleteChat = useDeleteChat();
  const listRef = useRef<HTMLUListElement>(null);

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

  const visible = filterChats(chats.data ?? [], search);

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
          ) : visible.length === 0 ? (
            <p className="empty">{search ? `No chat matches “${search}”.` : "No chats yet. Start one with “New chat”."}</p>
          ) : (
            <ul ref={listRef}>
              {visible.map((chat) => (
                <ChatItem key={chat.id} chat={chat} active={chat.id === activeChatId} onDelete={() => setDeleting(chat)} onOpen={() => setOpen(false)} />
              ))}
            </ul>
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
        <span className="chat-title">{chat.title}</span>
      </a>
      <span className="chat-actions">
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
