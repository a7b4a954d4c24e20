// Whether the workspace panel is open beside the conversation, how wide it is, and which of its
// panels is shown; remembered per browser.
import { create } from "zustand";
import { persist } from "zustand/middleware";

export type WorkspaceTab = "terminal" | "files" | "checkpoints";

export const MIN_WIDTH = 320;
export const DEFAULT_WIDTH = 520;

/** The panel's width within what the window leaves beside a usable conversation. */
export function clampWidth(width: number, windowWidth: number): number {
  const max = Math.max(MIN_WIDTH, windowWidth - 420);
  return Math.round(Math.min(Math.max(width, MIN_WIDTH), max));
}

interface PanelState {
  open: boolean;
  width: number;
  tab: WorkspaceTab;
  toggle: () => void;
  setWidth: (width: number) => void;
  setTab: (tab: WorkspaceTab) => void;
}

const usePanelStore = create<PanelState>()(
  persist(
    (set) => ({
      open: false,
      width: DEFAULT_WIDTH,
      tab: "terminal",
      toggle: () => set((s) => ({ open: !s.open })),
      setWidth: (width) => set({ width }),
      setTab: (tab) => set({ tab }),
    }),
    { name: "agentbox.workspace" },
  ),
);

export const useWorkspaceOpen = () => usePanelStore((s) => s.open);
export const useToggleWorkspace = () => usePanelStore((s) => s.toggle);
export const useWorkspaceWidth = () => usePanelStore((s) => s.width);
export const useSetWorkspaceWidth = () => usePanelStore((s) => s.setWidth);
export const useWorkspaceTab = () => usePanelStore((s) => s.tab);
export const useSetWorkspaceTab = () => usePanelStore((s) => s.setTab);
