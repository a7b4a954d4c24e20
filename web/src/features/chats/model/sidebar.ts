// UI state of the chat list: the search text and whether the list is open on a narrow screen.
import { create } from "zustand";

interface SidebarState {
  search: string;
  /** On phone width the list is a drawer over the conversation. */
  open: boolean;
  setSearch: (search: string) => void;
  setOpen: (open: boolean) => void;
}

const useSidebarStore = create<SidebarState>()((set) => ({
  search: "",
  open: false,
  setSearch: (search) => set({ search }),
  setOpen: (open) => set({ open }),
}));

export const useSearch = () => useSidebarStore((s) => s.search);
export const useSetSearch = () => useSidebarStore((s) => s.setSearch);
export const useSidebarOpen = () => useSidebarStore((s) => s.open);
export const useSetSidebarOpen = () => useSidebarStore((s) => s.setOpen);

/** Chats whose title contains every word of the search, case-insensitively. */
export function filterChats<T extends { title: string }>(chats: T[], search: string): T[] {
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return chats;
  return chats.filter((chat) => {
    const title = chat.title.toLowerCase();
    return words.every((word) => title.includes(word));
  });
}
