// The terminal tabs of each chat: which exist, which is shown, and the shell each is attached
// to. Kept in sessionStorage so that a reload reattaches every tab to its shell (the server
// keeps a shell for a minute without a client) instead of starting new ones.
import { create } from "zustand";
import { createJSONStorage, persist } from "zustand/middleware";

/** The server's limit of terminals per chat. */
export const MAX_TERMINALS = 8;

export interface TerminalTab {
  /** Stable for the tab's life; React's key and the tab's accessible name come from it. */
  key: string;
  title: string;
  /** The shell to reattach to, once the server has named it. */
  sessionId: string | null;
}

export interface ChatTerminals {
  tabs: TerminalTab[];
  active: string | null;
  /** Numbers tabs "Terminal 1", "Terminal 2"... without reusing a number in one visit. */
  counter: number;
}

const none: ChatTerminals = { tabs: [], active: null, counter: 0 };

/** Pure updates of one chat's tabs, tested on their own. */
export const tabUpdates = {
  add(state: ChatTerminals): ChatTerminals {
    if (state.tabs.length >= MAX_TERMINALS) return state;
    const counter = state.counter + 1;
    const tab: TerminalTab = { key: `t${counter}`, title: `Terminal ${counter}`, sessionId: null };
    return { tabs: [...state.tabs, tab], active: tab.key, counter };
  },
  close(state: ChatTerminals, key: string): ChatTerminals {
    const index = state.tabs.findIndex((t) => t.key === key);
    if (index < 0) return state;
    const tabs = state.tabs.filter((t) => t.key !== key);
    // The neighbour takes the focus, as in a browser's tab strip.
    const active = state.active === key ? (tabs[Math.min(index, tabs.length - 1)]?.key ?? null) : state.active;
    return { ...state, tabs, active };
  },
  select(state: ChatTerminals, key: string): ChatTerminals {
    return state.tabs.some((t) => t.key === key) ? { ...state, active: key } : state;
  },
  setSession(state: ChatTerminals, key: string, sessionId: string | null): ChatTerminals {
    return { ...state, tabs: state.tabs.map((t) => (t.key === key ? { ...t, sessionId } : t)) };
  },
};

interface TabsStore {
  chats: Record<string, ChatTerminals>;
  update: (chatId: string, change: (state: ChatTerminals) => ChatTerminals) => void;
}

const useTabsStore = create<TabsStore>()(
  persist(
    (set) => ({
      chats: {},
      update: (chatId, change) => set((s) => ({ chats: { ...s.chats, [chatId]: change(s.chats[chatId] ?? none) } })),
    }),
    { name: "agentbox.terminals", storage: createJSONStorage(() => sessionStorage) },
  ),
);

export const useChatTerminals = (chatId: string) => useTabsStore((s) => s.chats[chatId] ?? none);

export const terminalTabCount = (chatId: string) => useTabsStore.getState().chats[chatId]?.tabs.length ?? 0;

export function terminalActions(chatId: string) {
  const update = (change: (state: ChatTerminals) => ChatTerminals) => useTabsStore.getState().update(chatId, change);
  return {
    add: () => update(tabUpdates.add),
    close: (key: string) => update((s) => tabUpdates.close(s, key)),
    select: (key: string) => update((s) => tabUpdates.select(s, key)),
    setSession: (key: string, sessionId: string | null) => update((s) => tabUpdates.setSession(s, key, sessionId)),
  };
}
