// A request from the agent inline in the conversation: may this tool call run (approve, always
// allow, deny with a message), questions to answer (AskUserQuestion as a small form), or a plan
// to approve with the mode to continue in (or to send back with feedback). Once settled it
// shows how: by whom, with what message or answers.
import { lazy, Suspense, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { PermissionMode } from "@/shared/api/types";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";
import type { Block, PermissionOutcome } from "@/features/conversation/model/conversation";
import { toolSubtitle, toolView } from "@/features/conversation/model/tools";
import { MODES } from "@/features/composer/model/options";
import { useAnswerPermission } from "../api/permissions";
import { buildAnswers, choose, describeAnswers, noChoice, questionsOf, type Choice, type Question } from "../model/questions";
import { shortcutOf } from "../model/shortcuts";
import "./permissions.css";

const Markdown = lazy(() => import("@/shared/ui/Markdown"));

export type PermissionBlock = Extract<Block, { kind: "permission" }>;

/** `open`: the turn still runs, so an unanswered request can be answered. */
export function PermissionCard({ chatId, block, open }: { chatId: string; block: PermissionBlock; open: boolean }) {
  const waiting = block.resolved === null && open;
  const title = block.request === "question" ? "The agent asks" : block.request === "plan" ? "The agent proposes a plan" : `Allow ${block.toolName}?`;
  const card = useRef<HTMLElement>(null);
  // A focused tool request answers to A (approve) and D (deny…), unless a text box has the keys.
  const keys = waiting && block.request === "tool";
  const onKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    const action = shortcutOf(event.key, event.target instanceof HTMLElement ? event.target.tagName : "", event.ctrlKey || event.metaKey || event.altKey);
    if (!action) return;
    const button = card.current?.querySelector<HTMLButtonElement>(`[data-shortcut="${action}"]`);
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  };
  return (
    <section
      ref={card}
      className={`permission-card permission-${block.request} ${waiting ? "waiting" : "settled"}`}
      aria-label={title}
      tabIndex={keys ? 0 : undefined}
      onKeyDown={keys ? onKeyDown : undefined}
      aria-keyshortcuts={keys ? "A D" : undefined}
      data-request-id={block.requestId}
      data-seq={block.seq}
    >
      <header className="permission-head">
        <strong>{title}</strong>
        {waiting && <span className="badge badge-warn">Waiting for you</span>}
        {keys && (
          <span className="muted small permission-keys">
            <kbd>A</kbd> approve · <kbd>D</kbd> deny
          </span>
        )}
      </header>
      {block.request === "tool" && <ToolSummary block={block} />}
      {block.request === "plan" && block.plan && (
        <div className="permission-plan">
          <Suspense fallback={<div className="markdown plain">{block.plan}</div>}>
            <Markdown text={block.plan} />
          </Suspense>
        </div>
      )}
      {block.reason && <p className="permission-reason muted small">Why you are asked: {block.reason}</p>}
      {block.resolved ? (
        <Outcome outcome={block.resolved} kind={block.request} />
      ) : !open ? (
        <p className="muted small">The turn ended before this was answered.</p>
      ) : block.request === "question" ? (
        <QuestionForm chatId={chatId} block={block} />
      ) : block.request === "plan" ? (
        <PlanAnswer chatId={chatId} block={block} />
      ) : (
        <ToolAnswer chatId={chatId} block={block} />
      )}
      {waiting && block.expiresAt && <p className="muted small">Denied automatically at {new Date(block.expiresAt).toLocaleTimeString()} if nobody answers.</p>}
    </section>
  );
}

function ToolSummary({ block }: { block: PermissionBlock }) {
  const view = toolView(block.toolName, block.input);
  return (
    <div className="permission-tool">
      {view.kind === "bash" ? (
        <pre className="tool-command">$ {view.command}</pre>
      ) : view.kind === "generic" ? (
        <pre className="tool-input">{view.input}</pre>
      ) : (
        <code>{toolSubtitle(view)}</code>
      )}
      {block.description && <p className="small">{block.description}</p>}
    </div>
  );
}

function ToolAnswer({ chatId, block }: { chatId: string; block: PermissionBlock }) {
  const answer = useAnswerPermission(chatId, block.requestId);
  const [denying, setDenying] = useState(false);
  const [message, setMessage] = useState("");
  const deny = (event: FormEvent) => {
    event.preventDefault();
    answer.mutate({ approved: false, message: message.trim() || null });
  };
  return (
    <>
      {denying ? (
        <form className="permission-deny" onSubmit={deny}>
          <label>
            <span className="small">Tell the agent why, or what to do instead (optional)</span>
            <textarea rows={2} value={message} autoFocus aria-label="Reason for denying" onChange={(e) => setMessage(e.target.value)} />
          </label>
          <div className="permission-actions">
            <Button type="submit" variant="danger" disabled={answer.isPending}>
              Deny
            </Button>
            <Button variant="ghost" onClick={() => setDenying(false)} disabled={answer.isPending}>
              Back
            </Button>
          </div>
        </form>
      ) : (
        <div className="permission-actions">
          <Button variant="primary" data-shortcut="approve" disabled={answer.isPending} onClick={() => answer.mutate({ approved: true })}>
            Approve
          </Button>
          <Button disabled={answer.isPending} title="Approve, and let matching calls in this chat run without asking" onClick={() => answer.mutate({ approved: true, remember: true })}>
            Always allow
          </Button>
          <Button variant="ghost" data-shortcut="deny" disabled={answer.isPending} onClick={() => setDenying(true)}>
            Deny…
          </Button>
        </div>
      )}
      <ErrorText error={answer.error} />
    </>
  );
}

function QuestionForm({ chatId, block }: { chatId: string; block: PermissionBlock }) {
  const answer = useAnswerPermission(chatId, block.requestId);
  const questions = questionsOf(block.input);
  const [choices, setChoices] = useState<Record<string, Choice>>({});
  const [missing, setMissing] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const built = buildAnswers(questions, choices);
    if ("missing" in built) {
      setMissing(built.missing);
      return;
    }
    setMissing(null);
    answer.mutate({ approved: true, answers: built.answers });
  };
  const update = (q: Question, next: Choice) => setChoices((all) => ({ ...all, [q.question]: next }));
  return (
    <form className="permission-questions" onSubmit={submit}>
      {questions.map((q, index) => {
        const choice = choices[q.question] ?? noChoice;
        return (
          <fieldset key={q.question} className="question">
            <legend>
              {q.header && <span className="badge">{q.header}</span>} {q.question}
            </legend>
            {q.options.map((option) => (
              <label key={option.label} className="question-option">
                <input
                  type={q.multiSelect ? "checkbox" : "radio"}
                  name={`q-${block.requestId}-${index}`}
                  checked={choice.selected.includes(option.label) && (q.multiSelect || choice.other.trim() === "")}
                  onChange={() => update(q, choose(choice, option.label, q.multiSelect))}
                />
                <span>
                  {option.label}
                  {option.description && <span className="muted small"> — {option.description}</span>}
                </span>
              </label>
            ))}
            <label className="question-other">
              <span className="small">Other</span>
              <input type="text" value={choice.other} aria-label={`Other answer to: ${q.question}`} onChange={(e) => update(q, { ...choice, other: e.target.value })} />
            </label>
          </fieldset>
        );
      })}
      {questions.length === 0 && <p className="muted small">The agent sent no readable questions; you can only skip.</p>}
      <div className="permission-actions">
        <Button type="submit" variant="primary" disabled={answer.isPending || questions.length === 0}>
          Answer
        </Button>
        <Button variant="ghost" disabled={answer.isPending} onClick={() => answer.mutate({ approved: false, message: "The user chose not to answer." })}>
          Skip
        </Button>
      </div>
      {missing && (
        <p className="form-error" role="alert">
          Answer “{missing}” first.
        </p>
      )}
      <ErrorText error={answer.error} />
    </form>
  );
}

function PlanAnswer({ chatId, block }: { chatId: string; block: PermissionBlock }) {
  const answer = useAnswerPermission(chatId, block.requestId);
  const [mode, setMode] = useState<PermissionMode>("auto");
  const [feedback, setFeedback] = useState("");
  return (
    <div className="permission-plan-answer">
      <div className="permission-actions">
        <label className="picker">
          <span className="small">Then continue in</span>{" "}
          <select aria-label="Mode after the plan" value={mode} onChange={(e) => setMode(e.target.value as PermissionMode)}>
            {MODES.filter((m) => m.value !== "plan").map((m) => (
              <option key={m.value} value={m.value} title={m.hint}>
                {m.label}
              </option>
            ))}
          </select>
        </label>
        <Button variant="primary" disabled={answer.isPending} onClick={() => answer.mutate({ approved: true, mode })}>
          Approve plan
        </Button>
      </div>
      <form
        className="permission-deny"
        onSubmit={(event) => {
          event.preventDefault();
          answer.mutate({ approved: false, message: feedback.trim() || "Please revise the plan." });
        }}
      >
        <label>
          <span className="small">Or send it back with feedback</span>
          <textarea rows={2} value={feedback} aria-label="Feedback on the plan" onChange={(e) => setFeedback(e.target.value)} />
        </label>
        <div className="permission-actions">
          <Button type="submit" disabled={answer.isPending}>
            Send back
          </Button>
        </div>
      </form>
      <ErrorText error={answer.error} />
    </div>
  );
}

const BY: Record<string, string> = {
  user: "",
  timeout: " (nobody answered in time)",
  cancelled: " (the agent withdrew the request)",
  turn_ended: " (the turn ended)",
  server_restarted: " (the server restarted)",
};

function Outcome({ outcome, kind }: { outcome: PermissionOutcome; kind: PermissionBlock["request"] }) {
  const by = outcome.by ? (BY[outcome.by] ?? ` (${outcome.by})`) : "";
  const answers = describeAnswers(outcome.answers);
  const verb = outcome.approved ? (kind === "question" ? "Answered" : kind === "plan" ? "Plan approved" : "Approved") : kind === "question" ? "Not answered" : kind === "plan" ? "Sent back" : "Denied";
  return (
    <div className={`permission-outcome ${outcome.approved ? "good" : "bad"}`} role="status">
      <strong>{verb}</strong>
      {by}
      {outcome.approved && outcome.mode && kind === "plan" ? `; continuing in ${MODES.find((m) => m.value === outcome.mode)?.label ?? outcome.mode} mode` : ""}
      {!outcome.approved && outcome.message ? `: ${outcome.message}` : "."}
      {answers.length > 0 && (
        <ul className="small">
          {answers.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
