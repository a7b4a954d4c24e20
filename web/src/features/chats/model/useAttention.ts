// Keeps the user told about chats that need them: the count in the tab's title (chats that
// wait for an answer, and chats whose scheduled run ended since the user last looked), and a
// browser notification when a chat starts waiting while the user looks elsewhere (another
// chat, another tab; a run's end is notified by the tasks' own hook). The chat in view, while
// the tab is visible, is marked seen. Notifications need the user's consent, asked from a
// button (browsers only ask from a click).
import { useEffect, useRef, useState } from "react";
import { chatPath, navigate } from "@/shared/lib/router";
import { useChats, useMarkChatSeen } from "../api/chats";
import { attentionChats, newlyWaiting, titleWithBadge, waitingChats } from "./attention";

const BASE_TITLE = "agentbox";

function notificationsSupported(): boolean {
  return typeof window !== "undefined" && "Notification" in window;
}

export function useAttention(activeChatId: string | null): void {
  const chats = useChats();
  const seen = useRef<Set<string> | null>(null);
  const visible = useVisible();
  const { mutate: markSeen } = useMarkChatSeen();
  const marking = useRef<string | null>(null);
  useEffect(() => {
    if (!activeChatId || !visible) return;
    const run = chats.data?.find((c) => c.id === activeChatId)?.unseen_task_run;
    if (!run || marking.current === run.run_id) return;
    marking.current = run.run_id;
    markSeen(activeChatId, { onError: () => void (marking.current = null) });
  }, [chats.data, activeChatId, visible, markSeen]);
  useEffect(() => {
    if (!chats.data) return;
    const waiting = waitingChats(chats.data);
    document.title = titleWithBadge(BASE_TITLE, attentionChats(chats.data).size);
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

/** Whether the tab is visible, kept current. */
function useVisible(): boolean {
  const [visible, setVisible] = useState(() => typeof document === "undefined" || document.visibilityState === "visible");
  useEffect(() => {
    const changed = () => setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", changed);
    return () => document.removeEventListener("visibilitychange", changed);
  }, []);
  return visible;
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
