// One tool call as one line ("Read app.py · 120 lines", "Ran `pytest` · exit 0 · 3.1 s")
// that opens to the details: a command and its output, a diff, a checklist (TodoWrite), a
// sub-agent's own calls (Task), or the input and result of any other tool. A failed call, a
// checklist and a call the user was asked about start open; the rest start closed.
import { useState, type ReactNode } from "react";
import type { Block } from "../model/conversation";
import { cleanTaskOutput, mcpName, stoppedNotice, todoItems, toolSummary, type Todo } from "../model/summary";
import { LONG_OUTPUT_LINES, toolView, type DiffLine } from "../model/tools";
import { Spinner } from "@/shared/ui/Spinner";
import { openAccountSettings } from "@/features/settings/model/opener";
import { pathsOfCall } from "@/features/workspace/model/activity";
import { openFileInEditor } from "@/features/workspace/model/panel";
import { egressRefusal } from "../model/failures";

type ToolBlock = Extract<Block, { kind: "tool" }>;

interface ToolCardProps {
  block: ToolBlock;
  /** The call waits for the user's answer to a request about it. */
  waiting?: boolean;
  /** That request, shown inside the card so that one call is one card. */
  request?: ReactNode;
  /** A Task's sub-agent: its own text and tool calls. */
  nested?: ReactNode;
}

export function ToolCard({ block, waiting = false, request, nested }: ToolCardProps) {
  // Until the user opens or closes it: failures show, and so does a checklist (the whole
  // point of a TodoWrite).
  const [toggled, setToggled] = useState<boolean | null>(null);
  // A call the user was asked about shows the question and its answer: the conversation's
  // record of who allowed what.
  // A call stopped with the turn is no failure: it says so, and stays closed.
  const stopped = block.state === "failed" ? stoppedNotice(block.output) : null;
  // curl through the egress proxy: a refused host is a setting, not a broken command.
  const refusal = block.state === "running" ? null : egressRefusal(block.name, block.input, block.output);
  const shown = toggled ?? ((block.state === "failed" && !stopped) || refusal !== null || block.name === "TodoWrite" || waiting || request != null);
  const mcp = mcpName(block.name);
  return (
    <details
      className={`tool-card tool-${block.state}`}
      open={shown}
      onToggle={(e) => {
        const now = e.currentTarget.open;
        if (now !== shown) setToggled(now);
      }}
      data-tool={block.name}
      data-seq={block.seq}
    >
      <summary>
        <span className="tool-summary">{toolSummary(block)}</span>
        <span className="tool-state">
          {block.state === "running" && waiting ? (
            <span className="badge badge-warn">waiting for you</span>
          ) : block.state === "running" ? (
            <Spinner label="Running" />
          ) : stopped ? (
            <span className="muted">stopped</span>
          ) : refusal ? (
            <span className="bad">host not allowed</span>
          ) : block.state === "failed" ? (
            <span className="bad">failed</span>
          ) : null}
        </span>
      </summary>
      {shown && (
        <div className="tool-body">
          {request}
          {mcp && (
            <p className="muted small">
              MCP server <code>{mcp.server}</code>, tool <code>{mcp.tool}</code>
            </p>
          )}
          {refusal && <EgressNotice host={refusal.host} />}
          <FilePaths block={block} />
          {stopped ? <p className="muted small">{stopped}</p> : <Details block={block} nested={nested} waiting={waiting} />}
        </div>
      )}
    </details>
  );
}

function Details({ block, nested, waiting }: { block: ToolBlock; nested?: ReactNode; waiting: boolean }) {
  const running = block.output === null && block.state === "running" && <p className="muted small">{waiting ? "Waiting for your answer." : "Running…"}</p>;
  if (block.name === "TodoWrite") {
    const todos = todoItems(block.input);
    if (todos) {
      return (
        <>
          <Checklist todos={todos} />
          {block.state === "failed" && block.output !== null && <Output text={block.output} failed />}
        </>
      );
    }
  }
  if (block.name === "Task" || block.name === "Agent") {
    const prompt = typeof block.input.prompt === "string" ? block.input.prompt : null;
    return (
      <>
        {prompt && (
          <details className="task-prompt">
            <summary className="muted small">What the sub-agent was asked</summary>
            <pre>{prompt}</pre>
          </details>
        )}
        {nested && <div className="task-nested" aria-label="Sub-agent">{nested}</div>}
        {block.output !== null ? <Output text={cleanTaskOutput(block.output)} failed={block.state === "failed"} /> : running}
      </>
    );
  }
  const view = toolView(block.name, block.input);
  return (
    <>
      {view.kind === "bash" && <pre className="tool-command">$ {view.command}</pre>}
      {view.kind === "diff" && <Diff changes={view.changes} />}
      {view.kind === "generic" && <pre className="tool-input">{view.input}</pre>}
      {block.output !== null && (view.kind !== "diff" || block.state === "failed") && <Output text={block.output} failed={block.state === "failed"} />}
      {running}
    </>
  );
}

const TODO_MARKS: Record<Todo["status"], string> = { completed: "☑", in_progress: "◐", pending: "☐" };
const TODO_WORDS: Record<Todo["status"], string> = { completed: "done", in_progress: "in progress", pending: "to do" };

function Checklist({ todos }: { todos: Todo[] }) {
  return (
    <ul className="todo-list" aria-label="Plan">
      {todos.map((todo, index) => (
        <li key={index} className={`todo todo-${todo.status}`}>
          <span aria-hidden>{TODO_MARKS[todo.status]}</span> {todo.content}
          <span className="sr-only"> ({TODO_WORDS[todo.status]})</span>
        </li>
      ))}
    </ul>
  );
}

function Diff({ changes }: { changes: DiffLine[] }) {
  return (
    <pre className="diff" aria-label="Changes">
      {changes.map((line, index) => (
        <span key={index} className={line.sign === "+" ? "diff-add" : line.sign === "-" ? "diff-del" : "diff-ctx"}>
          {line.sign} {line.text}
          {"\n"}
        </span>
      ))}
    </pre>
  );
}

/** A tool's output, cut to its first lines until the user asks for all of it. */
function Output({ text, failed }: { text: string; failed: boolean }) {
  const lines = text.split("\n");
  const [all, setAll] = useState(lines.length <= LONG_OUTPUT_LINES);
  const shown = all ? text : lines.slice(0, LONG_OUTPUT_LINES).join("\n");
  return (
    <div className={`tool-output ${failed ? "tool-output-failed" : ""}`}>
      <pre>{shown || <span className="muted">(no output)</span>}</pre>
      {!all && (
        <button type="button" className="link small" onClick={() => setAll(true)}>
          Show all {lines.length} lines
        </button>
      )}
    </div>
  );
}

/** The egress proxy refused the call's connection: which host, and where to allow it. */
function EgressNotice({ host }: { host: string | null }) {
  return (
    <p className="egress-notice" role="note">
      The sandbox may not reach {host ? <code>{host}</code> : "that host"}: it is not on the allowed hosts.{" "}
      <button type="button" className="link" onClick={openAccountSettings}>
        Allow it in Settings
      </button>{" "}
      (your allowed hosts), then ask again.
    </p>
  );
}

/** The workspace files a call names, each a link that opens it in the editor. */
function FilePaths({ block }: { block: ToolBlock }) {
  const paths = pathsOfCall(block.name, block.input, block.output);
  if (paths.length === 0) return null;
  return (
    <ul className="tool-paths" aria-label="Files">
      {paths.slice(0, 50).map((path) => (
        <li key={path}>
          <button type="button" className="link small" onClick={() => openFileInEditor(path)} title="Open in the editor">
            {path}
          </button>
        </li>
      ))}
    </ul>
  );
}
