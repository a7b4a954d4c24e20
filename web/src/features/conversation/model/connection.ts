// The state of the open chat's live connection, for the indicator in its header.
import { create } from "zustand";

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline";

interface ConnectionStore {
  state: ConnectionState;
  set: (state: ConnectionState) => void;
}

const useConnectionStore = create<ConnectionStore>()((set) => ({
  state: "connecting",
  set: (state) => set({ state }),
}));

export const useConnectionState = () => useConnectionStore((s) => s.state);
export const setConnectionState = (state: ConnectionState) => useConnectionStore.getState().set(state);
