// The state of the open chat's live connection, for the indicator in its header, and which
// errors said only that the server could not be reached (they clear once it is back).
import { create } from "zustand";
import { ApiError } from "@/shared/api/client";

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

/**
 * Whether an error only says the server was unreachable (no answer, or a proxy's 502-504
 * while it restarts): shown while that lasts, cleared when the stream is live again.
 */
export function isUnreachable(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 0 || error.status === 502 || error.status === 503 || error.status === 504);
}
