// The signed-in session: tokens kept in localStorage so that a reload stays signed in, and
// whether the last session ended because the server refused it (then sign-in says so).
import { create } from "zustand";
import { persist } from "zustand/middleware";
import { setSessionKeeper, type Session } from "@/shared/api/client";

interface SessionState {
  session: Session | null;
  /** The session ended by itself (expired or revoked), not by signing out. */
  expired: boolean;
  /** The email of the last signed-in user, to fill the sign-in form after an expiry. */
  lastEmail: string;
  signedIn: (session: Session, email: string) => void;
  refreshed: (session: Session) => void;
  signedOut: () => void;
  expire: () => void;
}

export const useSessionStore = create<SessionState>()(
  persist(
    (set) => ({
      session: null,
      expired: false,
      lastEmail: "",
      signedIn: (session, email) => set({ session, expired: false, lastEmail: email }),
      refreshed: (session) => set({ session }),
      signedOut: () => set({ session: null, expired: false }),
      expire: () => set((state) => (state.session ? { session: null, expired: true } : {})),
    }),
    {
      name: "agentbox.session",
      partialize: ({ session, lastEmail }) => ({ session, lastEmail }),
    },
  ),
);

setSessionKeeper({
  get: () => useSessionStore.getState().session,
  set: (session) => useSessionStore.getState().refreshed(session),
  expire: () => useSessionStore.getState().expire(),
});

export const useIsSignedIn = () => useSessionStore((s) => s.session !== null);
export const useSessionExpired = () => useSessionStore((s) => s.expired);
export const useLastEmail = () => useSessionStore((s) => s.lastEmail);
