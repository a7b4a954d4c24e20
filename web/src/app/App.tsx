// The app's frame: sign-in when there is no session, otherwise the chat list beside the
// open chat (or a start page).
import { lazy, Suspense, useEffect } from "react";
import { AdminButton } from "@/features/admin/ui/AdminButton";
import { useMe, useSignOut } from "@/features/auth/api/auth";
import { useIsSignedIn } from "@/features/auth/model/session";
import { AuthScreen } from "@/features/auth/ui/AuthScreen";
import { useCreateChat } from "@/features/chats/api/chats";
import { useAttention, useNotificationConsent } from "@/features/chats/model/useAttention";
import { Sidebar } from "@/features/chats/ui/Sidebar";
import { ChatView } from "@/features/conversation/ui/ChatView";
import { preloadMarkdown } from "@/features/conversation/ui/MessageList";
import { AccountSettingsButton } from "@/features/settings/ui/SettingsButtons";
import { useTaskNotifications } from "@/features/tasks/model/useTaskNotifications";
import { TasksButton } from "@/features/tasks/ui/TasksButton";
import { chatPath, navigate, useRoute } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { useApplyTheme, useCycleTheme, useThemeChoice } from "@/shared/ui/theme";
import { AutoThemeIcon, BellIcon, MoonIcon, SunIcon } from "@/shared/ui/icons";

// Only administrators open it: a chunk of its own.
const AdminScreen = lazy(() => import("@/features/admin/ui/AdminScreen"));
const TasksScreen = lazy(() => import("@/features/tasks/ui/TasksScreen"));
// The start page is left for a chat at the first prompt: a chunk of its own, so that opening
// a chat's link does not wait for it.
const Home = lazy(() => import("@/features/chats/ui/Home"));

export function App() {
  useApplyTheme();
  const signedIn = useIsSignedIn();
  return signedIn ? <Shell /> : <AuthScreen />;
}

function Shell() {
  const route = useRoute();
  const createChat = useCreateChat();
  useEffect(() => {
    preloadMarkdown();
    // Alt+N starts a new chat from anywhere.
    const onKey = (event: KeyboardEvent) => {
      if (event.altKey && !event.ctrlKey && !event.metaKey && event.key.toLowerCase() === "n") {
        event.preventDefault();
        createChat.mutate({}, { onSuccess: (chat) => navigate(chatPath(chat.id)) });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [createChat]);
  const chatId = route.name === "chat" ? route.chatId : null;
  useAttention(chatId);
  useTaskNotifications();
  return (
    <div className="layout">
      <Sidebar activeChatId={chatId} footer={<AccountBar />} />
      <main className="main">
        {route.name === "admin" ? (
          <Suspense fallback={<Spinner label="Loading" />}>
            <AdminScreen />
          </Suspense>
        ) : route.name === "tasks" ? (
          <Suspense fallback={<Spinner label="Loading" />}>
            <TasksScreen />
          </Suspense>
        ) : chatId ? (
          <ChatView key={chatId} chatId={chatId} />
        ) : (
          <Suspense fallback={<Spinner label="Loading" />}>
            <Home />
          </Suspense>
        )}
      </main>
    </div>
  );
}

const themeLabels = { system: "System theme", light: "Light theme", dark: "Dark theme" } as const;

function AccountBar() {
  const me = useMe(true);
  const signOut = useSignOut();
  const theme = useThemeChoice();
  const cycleTheme = useCycleTheme();
  const notifications = useNotificationConsent();
  return (
    <div className="account">
      <span className="account-name" title={me.data?.email}>
        {me.data?.username ?? me.data?.email ?? ""}
      </span>
      <button type="button" className="icon-btn" onClick={cycleTheme} aria-label={`${themeLabels[theme]} (change)`} title={themeLabels[theme]}>
        {theme === "dark" ? <MoonIcon /> : theme === "light" ? <SunIcon /> : <AutoThemeIcon />}
      </button>
      {notifications.offer && (
        <button type="button" className="icon-btn" onClick={notifications.ask} aria-label="Notify me when a chat waits for me" title="Get a browser notification when a chat waits for your answer">
          <BellIcon />
        </button>
      )}
      <TasksButton />
      <AccountSettingsButton />
      {me.data?.is_admin && <AdminButton />}
      <Button variant="ghost" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
        Sign out
      </Button>
    </div>
  );
}
