// Keeps the user told about chats that wait for them: the count in the tab's title, and a
// browser notification when a chat starts waiting while the user looks elsewhere (another
// chat, another tab). Notifications need the user's consent, asked from a button
// (browsers only ask from a click).
import { useEffect, useRef, useState } from "react";
import { chatPath, navigate } from "@/shared/lib/router";
import { useChats } from "../api/chats";
import { newlyWaiting, titleWithBadge, waitingChats } from "./attention";

const BASE_TITLE = "agentbox";

function notificationsSupported(): boolean {
  return typeof window !== "undefined" && "Notification" in window;
}

export function useAttention(activeChatId: string | null): void {
  const chats = useChats();
  const seen = useRef<Set<string> | null>(null);
  useEffect(() => {
    if (!chats.data) return;
    const waiting = waitingChats(chats.data);
    document.title = titleWithBadge(BASE_TITLE, waiting.size);
    // The first list only sets the baseline: a reload must not notify about old requests.
    const fresh = seen.current ? newlyWaiting(seen.current, waiting) : [];
    seen.current = waiting;
    if (!notificationsSupported() || Notification.permission !== "granted") return;
    for (const id of fresh) {
      if (id === activeChatId && document.visibilityState === "visible") continue;
      const chat = chats.data.find((c) => c.id === id);
      const notification = new Notification("A chat waits for you", { body: chat ? `“${chat.title}” asks for your answer.` : "The agent asks for your answer.", tag: `agentbox-${id}` });
      notification.onclick = () => {
        window.focus();
        navigate(chatPath(id));
        notification.close();
      };
    }
  }, [chats.data, activeChatId]);
  useEffect(() => () => void (document.title = BASE_TITLE), []);
}

/** Whether to offer turning notifications on, and the action that asks the browser. */
export function useNotificationConsent(): { offer: boolean; ask: () => void } {
  const [permission, setPermission] = useState(() => (notificationsSupported() ? Notification.permission : "denied"));
  return {
    offer: permission === "default",
    ask: () => {
      if (!notificationsSupported()) return;
      void Notification.requestPermission().then(setPermission);
    },
  };
}
