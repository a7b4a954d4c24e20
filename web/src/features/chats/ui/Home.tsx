// The start page: a prompt box whose first prompt creates a chat, and the latest chats.
import { HomeComposer } from "@/features/composer/ui/HomeComposer";
import { chatPath, navigate } from "@/shared/lib/router";
import { MenuIcon } from "@/shared/ui/icons";
import { useChats } from "../api/chats";
import { useSetSidebarOpen } from "../model/sidebar";

/** How many of the latest chats the start page lists (the sidebar has them all). */
const RECENT_CHATS = 5;

/** The start page: a prompt box that starts a chat, and the latest chats. */
export default function Home() {
  const setSidebarOpen = useSetSidebarOpen();
  const chats = useChats();
  const recent = (chats.data ?? []).slice(0, RECENT_CHATS);
  return (
    <section className="chat-view">
      <header className="chat-header">
        <button type="button" className="icon-btn menu-btn" aria-label="Show chats" onClick={() => setSidebarOpen(true)}>
          <MenuIcon />
        </button>
        <h1 className="chat-heading">agentbox</h1>
      </header>
      <div className="home">
        <div className="home-intro">
          <h2>Chat with a coding agent</h2>
          <p className="muted">Each chat has a sandbox of its own where the agent runs commands and edits files.</p>
        </div>
        <HomeComposer />
        {recent.length > 0 && (
          <section className="home-recent" aria-labelledby="recent-heading">
            <h3 id="recent-heading" className="small muted">
              Recent chats
            </h3>
            <ul>
              {recent.map((chat) => (
                <li key={chat.id}>
                  <a
                    href={chatPath(chat.id)}
                    onClick={(e) => {
                      e.preventDefault();
                      navigate(chatPath(chat.id));
                    }}
                  >
                    <span className="home-recent-title">{chat.title}</span>
                    {chat.preview && <span className="muted small home-recent-preview">{chat.preview}</span>}
                  </a>
                </li>
              ))}
            </ul>
          </section>
        )}
      </div>
    </section>
  );
}

