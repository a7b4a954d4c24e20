// Which chats have a file open with unsaved changes, so that closing the workspace panel
// (which would drop the editor and its text) can ask first.
import { create } from "zustand";

interface UnsavedStore {
  chats: Record<string, boolean>;
  set: (chatId: string, unsaved: boolean) => void;
}

const useUnsavedStore = create<UnsavedStore>()((set) => ({
  chats: {},
  set: (chatId, unsaved) => set((s) => (Boolean(s.chats[chatId]) === unsaved ? s : { chats: { ...s.chats, [chatId]: unsaved } })),
}));

export const useHasUnsavedFile = (chatId: string) => useUnsavedStore((s) => s.chats[chatId] === true);
export const setUnsavedFile = (chatId: string, unsaved: boolean) => useUnsavedStore.getState().set(chatId, unsaved);
