// A repository chat's changes: the branch and how far it is from its upstream, each changed
// file (a click shows its diff with +/− counts), and commit, push, pull and a pull request.
// A chat that was not started from a repository says so; one whose clone has not happened
// yet says that the first turn clones it.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { ApiError } from "@/shared/api/client";
import { Button } from "@/shared/ui/Button";
import { useChat } from "@/features/chats/api/chats";
import { gitDiffQuery, gitKeys, gitStatusQuery, useGitAction, usePullRequest } from "../api/git";
import { diffStats, lineKind } from "../model/diff";
import "./changes.css";

function errorText(error: unknown): string {
  return error instanceof ApiError ? error.message : "The request failed.";
}

function Diff({ chatId, path }: { chatId: string; path: string }) {
  const diff = useQuery(gitDiffQuery(chatId, path));
  if (diff.isPending) return <p className="muted small changes-pad">Loading the diff…</p>;
  if (diff.isError) return <p className="changes-error changes-pad">{errorText(diff.error)}</p>;
  const text = diff.data.diff;
  if (!text) return <p className="muted small changes-pad">No diff against the index (a new file is in the status only).</p>;
  const stats = diffStats(text);
  return (
    <div className="changes-diff" aria-label={`Diff of ${path}`}>
      <p className="changes-stats small">
        <span className="changes-added">+{stats.added}</span> <span className="changes-removed">−{stats.removed}</span>
        {diff.data.truncated && <span className="muted"> (cut: the diff is longer)</span>}
      </p>
      <pre>
        {text.split("\n").map((line, index) => (
          <div key={index} className={`diff-line diff-${lineKind(line)}`}>
            {line || " "}
          </div>
        ))}
      </pre>
    </div>
  );
}

export function ChangesPanel({ chatId, visible }: { chatId: string; visible: boolean }) {
  const queryClient = useQueryClient();
  const chat = useChat(chatId);
  const status = useQuery({ ...gitStatusQuery(chatId), enabled: visible });
  const action = useGitAction(chatId);
  const pullRequest = usePullRequest(chatId);
  const [selected, setSelected] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  const [title, setTitle] = useState("");
  const [notice, setNotice] = useState<{ kind: "info" | "error"; text: string } | null>(null);

  // A turn that ended may have changed files: look again when the chat's log moves.
  const seen = useRef(chat.data?.last_event_id);
  useEffect(() => {
    const last = chat.data?.last_event_id;
    if (seen.current !== undefined && last !== seen.current) void queryClient.invalidateQueries({ queryKey: gitKeys.all(chatId) });
    seen.current = last;
  }, [chat.data?.last_event_id, chatId, queryClient]);

  if (status.isPending) return <div className="changes-panel"><p className="muted changes-pad">Loading…</p></div>;
  if (status.isError) {
    const code = status.error instanceof ApiError ? status.error.code : "";
    const text =
      code === "no_repository"
        ? "This chat was not started from a repository. Start a chat from a repository URL to see its changes here."
        : code === "not_cloned"
          ? "The repository is cloned before the chat's first turn: send a prompt first."
          : errorText(status.error);
    return <div className="changes-panel"><p className="muted changes-pad">{text}</p></div>;
  }
  const git = status.data;
  const run = (name: "commit" | "push" | "pull") => {
    setNotice(null);
    action.mutate(
      { action: name, body: name === "commit" ? { message } : undefined },
      {
        onSuccess: (done) => {
          if (name === "commit") setMessage("");
          setNotice({ kind: "info", text: `${name === "commit" ? "Committed" : name === "push" ? "Pushed" : "Pulled"} (${done.branch ?? "detached"} at ${done.commit?.slice(0, 8) ?? "?"}).` });
        },
        onError: (error) => setNotice({ kind: "error", text: errorText(error) }),
      },
    );
  };
  const openPullRequest = () => {
    setNotice(null);
    pullRequest.mutate(
      { title },
      {
        onSuccess: (opened) => {
          setTitle("");
          setNotice({ kind: "info", text: `Pull request #${opened.number} opened: ${opened.url}` });
        },
        onError: (error) => setNotice({ kind: "error", text: errorText(error) }),
      },
    );
  };
  const busy = action.isPending || pullRequest.isPending;
  return (
    <div className="changes-panel">
      <div className="changes-toolbar">
        <p className="small">
          <strong>{git.branch ?? "detached HEAD"}</strong>
          {git.upstream && <span className="muted"> → {git.upstream} (↑{git.ahead} ↓{git.behind})</span>}
        </p>
        <Button onClick={() => run("pull")} disabled={busy}>Pull</Button>
        <Button onClick={() => run("push")} disabled={busy}>Push</Button>
      </div>
      {notice && <p className={notice.kind === "error" ? "changes-error changes-pad" : "changes-info changes-pad"} role="status">{notice.text}</p>}
      <div className="changes-scroll">
        {git.changes.length === 0 ? (
          <p className="muted changes-pad">No changes.</p>
        ) : (
          <ul className="changes-list" aria-label="Changed files">
            {git.changes.map((change) => (
              <li key={change.path}>
                <button type="button" className={change.path === selected ? "changes-file active" : "changes-file"} onClick={() => setSelected(change.path === selected ? null : change.path)}>
                  <span className={`changes-kind changes-kind-${change.kind}`}>{change.kind}</span> {change.path}
                  {change.original_path && <span className="muted"> (from {change.original_path})</span>}
                </button>
                {change.path === selected && <Diff chatId={chatId} path={change.path} />}
              </li>
            ))}
          </ul>
        )}
      </div>
      <form className="changes-commit" onSubmit={(event) => { event.preventDefault(); run("commit"); }}>
        <input aria-label="Commit message" placeholder="Commit message" value={message} onChange={(event) => setMessage(event.target.value)} />
        <Button type="submit" variant="primary" disabled={busy || !message.trim() || git.changes.length === 0}>Commit all</Button>
      </form>
      <form className="changes-commit" onSubmit={(event) => { event.preventDefault(); openPullRequest(); }}>
        <input aria-label="Pull request title" placeholder="Pull request title" value={title} onChange={(event) => setTitle(event.target.value)} />
        <Button type="submit" disabled={busy || !title.trim() || !git.branch}>Open pull request</Button>
      </form>
    </div>
  );
}
