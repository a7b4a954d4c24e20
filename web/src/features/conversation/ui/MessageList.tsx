// The conversation: the user's prompts, and for each turn the agent's thinking, text, tool
// calls, notices and errors in the order they happened, with the turn's status, tokens and
// cost underneath. Heights only grow while a turn streams, so nothing jumps.
import { lazy, Suspense, useState } from "react";
import type { Block, MessageView } from "../model/conversation";
import { hasFigures } from "../model/figures";
import { useRetryTurn } from "../api/retry";
import { ApiError } from "@/shared/api/client";
import { Button } from "@/shared/ui/Button";
import { formatCost, formatTokens } from "@/shared/lib/format";
import { PermissionCard } from "@/features/permissions/ui/PermissionCard";
import { hasDemoNotice, modelAdvice, quietBlocks, retryWords } from "../model/failures";
import { turnBefore, type RewindRequest } from "../model/rewind";
import { ToolCard } from "./ToolCard";
import { TurnProgress } from "./TurnProgress";
import { UserMessage } from "./UserMessage";
import "./conversation.css";

// Markdown and code highlighting are most of the app's code; they load right after the first
// screen, and text shows as plain text for that moment.
const Markdown = lazy(() => import("@/shared/ui/Markdown"));
// The dialog of Edit and "Restore to here", with the checkpoint API: loaded when first asked for.
const RewindDialog = lazy(() => import("./Rewind").then((m) => ({ default: m.RewindDialog })));

/** Edit and "Restore to here": what the user asked for, the dialog once asked, and how it went. */
function useRewind(chatId: string, messages: readonly MessageView[]) {
  const [request, setRequest] = useState<RewindRequest | null>(null);
  const [asked, setAsked] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ask = (next: RewindRequest) => {
    setError(null);
    setAsked(true);
    setRequest(next);
  };
  const dialog = asked && (
    <Suspense fallback={null}>
      <RewindDialog
        chatId={chatId}
        messages={messages}
        request={request}
        onClose={(failure) => {
          setRequest(null);
          setError(failure);
        }}
      />
    </Suspense>
  );
  return { ask, error, dialog };
}

export function preloadMarkdown(): void {
  void import("@/shared/ui/Markdown");
}

function Text({ text }: { text: string }) {
  return (
    <Suspense fallback={<div className="markdown plain">{text}</div>}>
      <Markdown text={text} />
    </Suspense>
  );
}

export function MessageList({ chatId, messages, running = false }: { chatId: string; messages: MessageView[]; running?: boolean }) {
  // Only the latest turn can be retried (a retry of an older one would answer out of order).
  const latest = messages.findLast((m) => m.role === "assistant")?.id;
  const rewind = useRewind(chatId, messages);
  let turn = 0;
  // The demo-mode notice comes with every turn; the chat shows it once.
  let demoShown = false;
  return (
    <>
      <ol className="messages" aria-label="Conversation">
        {messages.map((message) => {
          if (message.role === "user") {
            const blocked = running
              ? "Wait for the running turn to end (or stop it)."
              : !turnBefore(messages, message.id)
                ? "The first prompt has no checkpoint before it: start a new chat to ask it differently."
                : null;
            return <UserMessage key={message.id} message={message} editBlocked={blocked} onEdit={(text) => rewind.ask({ action: "edit", prompt: message, text })} />;
          }
          turn += 1;
          const number = turn;
          const skipDemo = demoShown;
          demoShown ||= hasDemoNotice(message.blocks);
          return (
            <AssistantMessage
              key={message.id}
              chatId={chatId}
              message={message}
              latest={message.id === latest}
              demoShown={skipDemo}
              onRestore={running ? null : () => rewind.ask({ action: "restore", turn: message, number })}
            />
          );
        })}
      </ol>
      {rewind.error && (
        <p className="error-block" role="alert">
          {rewind.error}
        </p>
      )}
      {rewind.dialog}
    </>
  );
}

/** How the blocks of one turn nest: a sub-agent's blocks in its Task's card, a request about
 * a tool call in that call's card, and only the latest checklist of each agent. */
export interface Layout {
  top: Block[];
  children: Map<string, Block[]>;
  requests: Map<string, Extract<Block, { kind: "permission" }>>;
}

export function layoutBlocks(blocks: Block[]): Layout {
  const tasks = new Set(blocks.flatMap((b) => (b.kind === "tool" && (b.name === "Task" || b.name === "Agent") ? [b.id] : [])));
  const calls = new Set(blocks.flatMap((b) => (b.kind === "tool" ? [b.id] : [])));
  const parentOf = (b: Block) => ("parent" in b && b.parent && tasks.has(b.parent) ? b.parent : null);
  // A checklist updates in place: the latest TodoWrite of an agent (main or sub-agent) stands for all of them.
  const lastTodo = new Map<string | null, number>();
  for (const b of blocks) if (b.kind === "tool" && b.name === "TodoWrite") lastTodo.set(parentOf(b), b.seq);
  const layout: Layout = { top: [], children: new Map(), requests: new Map() };
  for (const b of blocks) {
    if (b.kind === "tool" && b.name === "TodoWrite" && lastTodo.get(parentOf(b)) !== b.seq) continue;
    if (b.kind === "permission" && b.request === "tool" && b.toolUseId && calls.has(b.toolUseId)) {
      layout.requests.set(b.toolUseId, b);
      continue;
    }
    const parent = parentOf(b);
    if (parent) layout.children.set(parent, [...(layout.children.get(parent) ?? []), b]);
    else layout.top.push(b);
  }
  return layout;
}

interface AssistantProps {
  chatId: string;
  message: MessageView;
  latest: boolean;
  /** An earlier turn of the chat showed the demo-mode notice. */
  demoShown: boolean;
  /** Restores this turn's checkpoint (after asking); null while it cannot. */
  onRestore: (() => void) | null;
}

function AssistantMessage({ chatId, message, latest, demoShown, onRestore }: AssistantProps) {
  const open = message.status === "in_progress";
  // Tool calls held by a request to the user: their cards say so instead of "Running".
  const held = new Set(message.blocks.flatMap((b) => (b.kind === "permission" && b.resolved === null && open && b.toolUseId ? [b.toolUseId] : [])));
  const layout = layoutBlocks(quietBlocks(message.blocks, demoShown));
  return (
    <li className={`message message-assistant status-${message.status}`} data-message-id={message.id} aria-busy={message.status === "in_progress"}>
      {layout.top.map((block) => (
        <BlockView key={`${block.kind}-${block.seq}`} chatId={chatId} block={block} open={open} held={held} layout={layout} />
      ))}
      {message.liveThinking && (
        <details className="thinking live" open>
          <summary>Thinking…</summary>
          <div className="thinking-text">{message.liveThinking}</div>
        </details>
      )}
      {message.live && (
        <div className="block-text live">
          <Text text={message.live} />
        </div>
      )}
      <MessageFooter chatId={chatId} message={message} retryable={latest} onRestore={onRestore} />
    </li>
  );
}

/** `open`: the block's turn still runs; `held`: tool calls waiting for the user's answer. */
function BlockView({ chatId, block, open, held, layout }: { chatId: string; block: Block; open: boolean; held: ReadonlySet<string>; layout: Layout }) {
  switch (block.kind) {
    case "text":
      return (
        <div className="block-text" data-seq={block.seq}>
          {block.parent && !layout.children.has(block.parent) && <span className="subagent">sub-agent</span>}
          <Text text={block.text} />
        </div>
      );
    case "thinking":
      return <Thinking block={block} open={open} />;
    case "tool": {
      const request = layout.requests.get(block.id);
      const children = layout.children.get(block.id);
      return (
        <ToolCard
          block={block}
          waiting={held.has(block.id)}
          request={request && <PermissionCard chatId={chatId} block={request} open={open} />}
          nested={children?.map((child) => <BlockView key={`${child.kind}-${child.seq}`} chatId={chatId} block={child} open={open} held={held} layout={layout} />)}
        />
      );
    }
    case "permission":
      return <PermissionCard chatId={chatId} block={block} open={open} />;
    case "system":
      return <SystemNotice block={block} />;
    case "error":
      // A restart is not the user's doing nor the agent's failure: a plain notice.
      if (block.code === "server_restarted") {
        return (
          <div className="notice-block" data-seq={block.seq}>
            Interrupted: the server restarted while this turn ran.
          </div>
        );
      }
      return <ErrorBlock block={block} />;
    case "user":
      return null;
  }
}

/** The model's thinking: open to read while its turn runs, folded away once it ended (the user's toggle wins). */
function Thinking({ block, open }: { block: Extract<Block, { kind: "thinking" }>; open: boolean }) {
  const [toggled, setToggled] = useState<boolean | null>(null);
  const shown = toggled ?? open;
  return (
    <details className="thinking" data-seq={block.seq} open={shown}>
      {/* The click, not the toggle event: the browser also fires that when `open` follows the turn, late. */}
      <summary
        onClick={(e) => {
          e.preventDefault();
          setToggled(!shown);
        }}
      >
        {open && toggled === null ? "Thinking…" : "Thinking"}
      </summary>
      <div className="thinking-text">{block.thinking}</div>
    </details>
  );
}

function ErrorBlock({ block }: { block: Extract<Block, { kind: "error" }> }) {
  const advice = modelAdvice(block.code, block.message);
  if (advice) {
    return (
      <div className="error-block" role="alert" data-seq={block.seq}>
        <strong>{advice.title}.</strong> {advice.advice}
        <details className="error-details">
          <summary className="small">What the API said</summary>
          <pre>{block.message}</pre>
        </details>
      </div>
    );
  }
  return (
    <div className="error-block" role="alert" data-seq={block.seq}>
      <strong>Error{block.code ? ` (${block.code})` : ""}:</strong> {block.message}
    </div>
  );
}

function SystemNotice({ block }: { block: Extract<Block, { kind: "system" }> }) {
  const text = typeof block.details.text === "string" ? block.details.text : null;
  if (text) {
    return (
      <div className="notice-block" data-seq={block.seq}>
        {text}
      </div>
    );
  }
  if (block.subtype === "rewind") {
    return (
      <div className="notice-block" data-seq={block.seq}>
        Restored the checkpoint of this turn: the workspace and the conversation are back to this point. Later turns are kept aside; restoring a later checkpoint brings them back.
      </div>
    );
  }
  if (block.subtype === "api_retry") {
    const attempt = block.details.attempt;
    const max = block.details.max_retries;
    return (
      <div className="notice-block muted" data-seq={block.seq}>
        {retryWords(block.details.error_status)}; retrying{typeof attempt === "number" ? ` (attempt ${attempt}${typeof max === "number" ? ` of ${max}` : ""})` : ""}…
      </div>
    );
  }
  // The session's start and status changes are bookkeeping, not conversation.
  return null;
}

function MessageFooter({ chatId, message, retryable, onRestore }: { chatId: string; message: MessageView; retryable: boolean; onRestore: (() => void) | null }) {
  const retry = useRetryTurn(chatId);
  if (message.status === "in_progress") {
    return <TurnProgress message={message} />;
  }
  // A turn that failed before the model answered reports zeros, which say nothing.
  const usage = hasFigures(message.usage, message.costUsd) ? message.usage : null;
  const cost = usage ? formatCost(message.costUsd) : null;
  const parts = [
    usage ? `${formatTokens(usage.input_tokens ?? 0)} in` : null,
    usage ? `${formatTokens(usage.output_tokens ?? 0)} out` : null,
    usage && (usage.cache_read_input_tokens ?? 0) > 0 ? `${formatTokens(usage.cache_read_input_tokens ?? 0)} cached` : null,
    cost,
  ].filter(Boolean);
  return (
    <div className="message-footer">
      {message.status === "interrupted" && <span className="badge badge-warn">Stopped</span>}
      {message.status === "failed" && <span className="badge badge-bad">Failed</span>}
      {parts.length > 0 && <span className="usage" title="Tokens and cost of this turn alone">{parts.join(" · ")}</span>}
      {retryable && (message.status === "failed" || message.status === "interrupted") && (
        <Button variant="secondary" onClick={() => retry.mutate(message.id)} disabled={retry.isPending || retry.isSuccess}>
          Retry
        </Button>
      )}
      {message.status === "completed" && onRestore && (
        <button type="button" className="link small turn-restore" onClick={onRestore} title="Put the files and the conversation back to the end of this turn">
          Restore to here
        </button>
      )}
      {retry.error && <span className="bad small">{retry.error instanceof ApiError ? retry.error.message : "The turn could not be retried."}</span>}
    </div>
  );
}
