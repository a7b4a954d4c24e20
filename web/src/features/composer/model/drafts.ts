// What the user is typing, per chat. Kept in localStorage so that neither a reload nor an
// expired session (which swaps the app for the sign-in form) loses a half-written prompt.
import { create } from "zustand";
import { persist } from "zustand/middleware";

interface DraftState {
  drafts: Record<string, string>;
  setDraft: (chatId: string, text: string) => void;
}

export const useDraftStore = create<DraftState>()(
  persist(
    (set) => ({
      drafts: {},
      setDraft: (chatId, text) =>
        set((state) => {
          const drafts = { ...state.drafts };
          if (text) drafts[chatId] = text;
          else delete drafts[chatId];
          return { drafts };
        }),
    }),
    { name: "agentbox.drafts" },
  ),
);

export const useDraft = (chatId: string) => useDraftStore((s) => s.drafts[chatId] ?? "");
export const useSetDraft = () => useDraftStore((s) => s.setDraft);
