// Whether the workspace panel is open beside the conversation, how wide it is, and which of its
// panels is shown; remembered per browser. Also the conversation's ways in: a path on a tool
// card opens that file in the editor, and a chat's first file change opens the panel on a
// wide screen (once per chat: closing it again is the user's choice).
import { useEffect, useRef } from "react";
import { create } from "zustand";
import type { MessageView } from "@/features/conversation/model/conversation";
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

interface PanelState {
  open: boolean;
  width: number;
  tab: WorkspaceTab;
  /** Chats whose panel already opened by itself. */
  autoOpened: Record<string, true>;
  fileRequest: FileRequest | null;
  toggle: () => void;
  openFile: (path: string) => void;
  autoOpen: (chatId: string) => void;
  setWidth: (width: number) => void;
  setTab: (tab: WorkspaceTab) => void;
}

const usePanelStore = create<PanelState>()(
  persist(
    (set) => ({
      open: false,
      width: DEFAULT_WIDTH,
      tab: "terminal",
      autoOpened: {},
      fileRequest: null,
      toggle: () => set((s) => ({ open: !s.open })),
      openFile: (path) => set((s) => ({ open: true, tab: "files", fileRequest: { path, n: (s.fileRequest?.n ?? 0) + 1 } })),
      autoOpen: (chatId) => set((s) => ({ open: true, tab: "files", autoOpened: { ...s.autoOpened, [chatId]: true } })),
      setWidth: (width) => set({ width }),
      setTab: (tab) => set({ tab }),
    }),
    // A file request is for this moment only, not for the next visit.
    { name: "agentbox.workspace", partialize: ({ fileRequest: _request, ...kept }) => kept },
  ),
);

export const useWorkspaceOpen = () => usePanelStore((s) => s.open);
export const useToggleWorkspace = () => usePanelStore((s) => s.toggle);
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
