// Whether the workspace panel is open beside the conversation, how wide it is, and which of its
// panels is shown; remembered per browser. On a phone the panel is a bottom sheet instead, open
// for one chat at a time and never remembered: it covers most of the conversation, so a chat
// opened (or reopened) on a phone shows its conversation first. Also the conversation's ways in: a path on a tool
// card opens that file in the editor, and a chat's first file change opens the panel on a
// wide screen (once per chat: closing it again is the user's choice).
import { useEffect, useRef } from "react";
import { create } from "zustand";
import type { MessageView } from "@/features/conversation/model/conversation";
import { isPhone, usePhone } from "@/shared/lib/media";
import { parseRoute } from "@/shared/lib/router";
import { fileActivity, workspacePath } from "./activity";
import { persist } from "zustand/middleware";

export type WorkspaceTab = "terminal" | "files" | "preview" | "changes" | "checkpoints";

export const MIN_WIDTH = 320;
export const DEFAULT_WIDTH = 520;

/** The panel's width within what the window leaves beside a usable conversation. */
export function clampWidth(width: number, windowWidth: number): number {
  const max = Math.max(MIN_WIDTH, windowWidth - 420);
  return Math.round(Math.min(Math.max(width, MIN_WIDTH), max));
}

/** The narrowest window on which the panel opens by itself beside the conversation. */
export const WIDE_SCREEN = 1100;

/** A file to show in the editor; `n` tells a second request for the same path from the first. */
export interface FileRequest {
  path: string;
  n: number;
}

/** Where the panel is open: beside the conversation (wide screens), or the chat whose sheet is. */
export interface OpenState {
  open: boolean;
  sheet: string | null;
}

/** Whether `chatId`'s panel is open: the remembered choice on a wide screen, its sheet on a phone. */
export function isOpen(state: OpenState, chatId: string, phone: boolean): boolean {
  return phone ? state.sheet === chatId : state.open;
}

/** The change that opens or closes `chatId`'s panel; a phone's sheet leaves the wide choice alone. */
export function opened(chatId: string | null, phone: boolean, open: boolean): Partial<OpenState> {
  return phone ? { sheet: open && chatId ? chatId : null } : { open };
}

interface PanelState extends OpenState {
  width: number;
  tab: WorkspaceTab;
  /** Chats whose panel already opened by itself. */
  autoOpened: Record<string, true>;
  fileRequest: FileRequest | null;
  setOpen: (chatId: string, phone: boolean, open: boolean) => void;
  openFile: (path: string) => void;
  autoOpen: (chatId: string) => void;
  setWidth: (width: number) => void;
  setTab: (tab: WorkspaceTab) => void;
}

const usePanelStore = create<PanelState>()(
  persist(
    (set) => ({
      open: false,
      sheet: null,
      width: DEFAULT_WIDTH,
      tab: "terminal",
      autoOpened: {},
      fileRequest: null,
      setOpen: (chatId, phone, open) => set(opened(chatId, phone, open)),
      // A path is on a card of the open chat, so the sheet to open is the route's chat.
      openFile: (path) =>
        set((s) => {
          const route = parseRoute(window.location.pathname);
          const chatId = route.name === "chat" ? route.chatId : null;
          return { ...opened(chatId, isPhone(), true), tab: "files", fileRequest: { path, n: (s.fileRequest?.n ?? 0) + 1 } };
        }),
      autoOpen: (chatId) => set((s) => ({ open: true, tab: "files", autoOpened: { ...s.autoOpened, [chatId]: true } })),
      setWidth: (width) => set({ width }),
      setTab: (tab) => set({ tab }),
    }),
    // A file request is for this moment only, and a phone's sheet for this visit of its chat.
    { name: "agentbox.workspace", partialize: ({ fileRequest: _request, sheet: _sheet, ...kept }) => kept },
  ),
);

export function useWorkspaceOpen(chatId: string): boolean {
  const phone = usePhone();
  const open = usePanelStore((s) => isOpen(s, chatId, phone));
  // A window crossing the phone width (a rotated tablet, a resized window) keeps the panel as
  // the user sees it: an open panel becomes the open sheet, and the other way round.
  const before = useRef(phone);
  // Another chat's sheet is over once this chat shows (it is already closed here), so that
  // going back to that chat does not find it open.
  useEffect(() => {
    const { sheet } = usePanelStore.getState();
    if (sheet !== null && sheet !== chatId) usePanelStore.setState({ sheet: null });
  }, [chatId]);
  useEffect(() => {
    if (before.current === phone) return;
    const wasOpen = isOpen(usePanelStore.getState(), chatId, before.current);
    before.current = phone;
    usePanelStore.setState(opened(chatId, phone, wasOpen));
  }, [chatId, phone]);
  return open;
}
/** Opens or closes `chatId`'s panel: beside the conversation, or as its sheet on a phone. */
export function useSetWorkspaceOpen(chatId: string): (open: boolean) => void {
  const phone = usePhone();
  const setOpen = usePanelStore((s) => s.setOpen);
  return (open) => setOpen(chatId, phone, open);
}
export const useWorkspaceWidth = () => usePanelStore((s) => s.width);
export const useSetWorkspaceWidth = () => usePanelStore((s) => s.setWidth);
export const useWorkspaceTab = () => usePanelStore((s) => s.tab);
export const useSetWorkspaceTab = () => usePanelStore((s) => s.setTab);
export const useFileRequest = () => usePanelStore((s) => s.fileRequest);
/** The files panel took the request: it is not repeated when the panel mounts again. */
export const takeFileRequest = () => usePanelStore.setState({ fileRequest: null });

/** Opens a file in the workspace's editor; a path outside the workspace is refused (false). */
export function openFileInEditor(path: string): boolean {
  const relative = workspacePath(path);
  if (relative === null) return false;
  usePanelStore.getState().openFile(relative);
  return true;
}

/**
 * Opens the panel (on its files) the first time the agent changes a file in the chat while
 * it is open here, on a wide screen; `messages` is undefined until the conversation loaded
 * (the history's changes are not news).
 */
export function useOpenOnFileActivity(chatId: string, messages: readonly MessageView[] | undefined): void {
  const seen = useRef<{ chatId: string; count: number } | null>(null);
  const count = messages ? fileActivity(messages) : null;
  useEffect(() => {
    if (count === null) return;
    const before = seen.current?.chatId === chatId ? seen.current.count : null;
    seen.current = { chatId, count };
    if (before === null || count <= before) return;
    const state = usePanelStore.getState();
    if (state.open || state.autoOpened[chatId] || window.innerWidth < WIDE_SCREEN) return;
    state.autoOpen(chatId);
  }, [chatId, count]);
}
