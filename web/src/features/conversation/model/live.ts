// What a running turn is doing now, in a few words ("Running `npm test`…", "Thinking…"), how
// long it has run, and what a screen reader hears when a reply is done. Pure functions of
// the turn's message, tested without a browser.
import type { Block, MessageView } from "./conversation";
import { fileName, toolSummary } from "./summary";
import { retryWords } from "./failures";

function shortCommand(command: string): string {
  const first = command.trim().split("\n")[0] ?? "";
  return first.length > 50 ? `${first.slice(0, 49)}…` : first;
}

/** What a tool call that has not ended is doing, as a present-tense line. */
function doing(block: Extract<Block, { kind: "tool" }>): string {
  const path = [block.input.file_path, block.input.notebook_path, block.input.path].find((v): v is string => typeof v === "string" && v !== "");
  switch (block.name) {
    case "Bash":
      return typeof block.input.command === "string" ? `Running \`${shortCommand(block.input.command)}\`…` : "Running a command…";
    case "Read":
      return path ? `Reading ${fileName(path)}…` : "Reading…";
    case "Write":
      return path ? `Writing ${fileName(path)}…` : "Writing a file…";
    case "Edit":
    case "MultiEdit":
    case "NotebookEdit":
      return path ? `Editing ${fileName(path)}…` : "Editing…";
    case "Glob":
    case "Grep":
      return "Searching the files…";
    case "WebFetch":
    case "WebSearch":
      return "Looking on the web…";
    case "TodoWrite":
      return "Planning…";
    case "Task":
    case "Agent":
      return `${toolSummary(block)}…`;
    default:
      return `Using ${toolSummary(block)}…`;
  }
}

/** The running turn's current activity; "Thinking…" while the model has the word. */
export function activity(message: MessageView): string {
  if (message.blocks.some((b) => b.kind === "permission" && b.resolved === null)) return "Waiting for your answer…";
  // The innermost call still running says most (a sub-agent's command rather than its Task).
  const running = message.blocks.findLast((b): b is Extract<Block, { kind: "tool" }> => b.kind === "tool" && b.state === "running");
  if (running) return doing(running);
  if (message.live) return "Writing the reply…";
  const last = message.blocks.at(-1);
  if (last?.kind === "system" && last.subtype === "api_retry") {
    const attempt = last.details.attempt;
    return `${retryWords(last.details.error_status)}; retrying${typeof attempt === "number" ? ` (attempt ${attempt})` : ""}…`;
  }
  return "Thinking…";
}

/** A duration as a clock reads it: "0:07", "2:05", "1:02:05". */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** What a screen reader is told when a turn ends: how it ended and the start of its reply. */
export function announcement(message: MessageView): string | null {
  if (message.role !== "assistant" || message.status === "in_progress") return null;
  const reply = message.blocks
    .filter((b): b is Extract<Block, { kind: "text" }> => b.kind === "text" && b.parent === null)
    .map((b) => b.text)
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
  const start = reply.length > 200 ? `${reply.slice(0, 199)}…` : reply;
  switch (message.status) {
    case "completed":
      return start ? `The agent replied: ${start}` : "The agent finished the turn.";
    case "failed":
      return "The turn failed.";
    case "interrupted":
      return "The turn was stopped.";
    default:
      return null;
  }
}
