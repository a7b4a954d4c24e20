// Whether the workspace panel is open beside the conversation; remembered per browser.
import { create } from "zustand";
import { persist } from "zustand/middleware";

interface PanelState {
  open: boolean;
  toggle: () => void;
}

const usePanelStore = create<PanelState>()(
  persist((set) => ({ open: false, toggle: () => set((s) => ({ open: !s.open })) }), { name: "agentbox.workspace" }),
);

export const useWorkspaceOpen = () => usePanelStore((s) => s.open);
export const useToggleWorkspace = () => usePanelStore((s) => s.toggle);
