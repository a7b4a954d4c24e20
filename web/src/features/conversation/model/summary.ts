// One line for each tool call, read at a glance ("Read app.py · 120 lines", "Edited app.py
// +2 −1", "Ran `pytest` · exit 0 · 3.1 s"), and what the richer cards need: a TodoWrite's
// checklist, a Task's description, an MCP tool's server and name. Pure functions, tested
// without a browser.

export interface ToolCallFacts {
  name: string;
  input: Record<string, unknown>;
  state: "running" | "completed" | "failed";
  output: string | null;
  startedAt?: string | null;
  endedAt?: string | null;
}

export interface Todo {
  content: string;
  status: "pending" | "in_progress" | "completed";
}

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** The last part of a path: what a person recognises. */
export function fileName(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() || path;
}

function lines(value: string | null): number {
  if (!value) return 0;
  return value.replace(/\n$/, "").split("\n").length;
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** One line of `command`, cut to a length a header holds. */
function shortCommand(command: string): string {
  const first = command.trim().split("\n")[0] ?? "";
  const cut = first.length > 60 ? `${first.slice(0, 59)}…` : first;
  return command.trim().includes("\n") && cut === first ? `${cut} …` : cut;
}

/** The seconds a call took, from its events' times ("3.1 s"); null while unknown. */
export function duration(startedAt: string | null | undefined, endedAt: string | null | undefined): string | null {
  if (!startedAt || !endedAt) return null;
  const ms = Date.parse(endedAt) - Date.parse(startedAt);
  if (!Number.isFinite(ms) || ms < 0) return null;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The exit code of a Bash call: the CLI's "Exit code N" line for a failure, 0 for a success. */
export function exitCode(call: ToolCallFacts): number | null {
  if (call.state === "running") return null;
  const stated = /^Exit code (\d+)/m.exec(call.output ?? "");
  if (stated) return Number(stated[1]);
  return call.state === "completed" ? 0 : null;
}

/** `mcp__server__tool` as its server and tool; null for the CLI's own tools. */
export function mcpName(name: string): { server: string; tool: string } | null {
  const match = /^mcp__(.+?)__(.+)$/.exec(name);
  return match ? { server: match[1] ?? "", tool: match[2] ?? "" } : null;
}

/** A TodoWrite's list, or null when its input is not one. */
export function todoItems(input: Record<string, unknown>): Todo[] | null {
  if (!Array.isArray(input.todos)) return null;
  return input.todos.flatMap((item: unknown) => {
    if (!item || typeof item !== "object") return [];
    const { content, status, activeForm } = item as Record<string, unknown>;
    const label = text(content) ?? text(activeForm);
    if (!label) return [];
    const known = status === "completed" || status === "in_progress" ? status : "pending";
    return [{ content: label, status: known }];
  });
}

/**
 * What a person should read instead of the words the CLI gives the model when a call did not
 * run because the turn was stopped ("The user doesn't want to proceed… STOP what you are
 * doing…"); null for any other output.
 */
export function stoppedNotice(output: string | null): string | null {
  if (!output) return null;
  if (output.includes("The user doesn't want to proceed with this tool use")) return "Stopped by you: this call did not run.";
  if (/^\[Request interrupted by user/.test(output.trim())) return "Stopped by you.";
  return null;
}

/** What the CLI answers the model when it starts a sub-agent in the background. */
const BACKGROUND_LAUNCH = /^Async agent launched/;

/**
 * A Task's result without what the CLI writes for the model alone: the sub-agent's id line
 * ("agentId: … (internal ID - do not mention to user …)"), its usage footer, and the
 * instructions that come with a sub-agent started in the background (which are all there is
 * of such a result, so it becomes a plain sentence).
 */
export function cleanTaskOutput(output: string): string {
  if (BACKGROUND_LAUNCH.test(output.trim())) return "The sub-agent went on in the background; the agent hears from it when it is done.";
  let text = output.replace(/<tools-used-before-summary>[\s\S]*?<\/tools-used-before-summary>/g, "");
  // The frame the CLI puts around a sub-agent's report for the model: the report is what
  // follows "The report follows:", indented by two spaces, up to the usage figures.
  const handBack = /\[Subagent hand-back\][\s\S]*?The report follows:\n?/.exec(text);
  if (handBack) {
    const report: string[] = [];
    for (const line of text.slice(handBack.index + handBack[0].length).split("\n")) {
      if (/^\s*(<usage>|tool_uses:|duration_ms:|total_tokens:)/.test(line)) break;
      report.push(line.replace(/^ {2}/, "").replace(/<usage>[\s\S]*$/, ""));
    }
    text = report.join("\n");
  }
  return text
    .split("\n")
    .filter((line) => !/do not mention to user/i.test(line) && !/^\s*<?(agentId|usage)\b/i.test(line))
    .join("\n")
    .trim();
}

/** How many entries a Glob or Grep result lists (its non-empty lines). */
function entries(output: string | null): number {
  return (output ?? "").split("\n").filter((line) => line.trim() !== "" && !/^Found \d+/.test(line)).length;
}

/** The card's one line. */
export function toolSummary(call: ToolCallFacts): string {
  const { input } = call;
  const path = text(input.file_path) ?? text(input.notebook_path) ?? text(input.path);
  const done = call.state === "completed";
  const mcp = mcpName(call.name);
  if (mcp) return `${mcp.server} · ${mcp.tool}`;
  switch (call.name) {
    case "Read":
    case "NotebookRead":
      if (!path) break;
      return done ? `Read ${fileName(path)} · ${plural(lines(call.output), "line")}` : `Read ${fileName(path)}`;
    case "Write":
      if (!path) break;
      return `Wrote ${fileName(path)} · ${plural(lines(text(input.content)), "line")}`;
    case "Edit":
    case "MultiEdit":
    case "NotebookEdit": {
      if (!path) break;
      const edits = call.name === "MultiEdit" && Array.isArray(input.edits) ? (input.edits as Record<string, unknown>[]) : [input];
      const added = edits.reduce((sum, edit) => sum + lines(text(edit.new_string) ?? text(edit.new_source)), 0);
      const removed = edits.reduce((sum, edit) => sum + lines(text(edit.old_string)), 0);
      return `Edited ${fileName(path)} +${added} −${removed}`;
    }
    case "Bash": {
      const command = text(input.command);
      if (!command) break;
      const parts = [`Ran \`${shortCommand(command)}\``];
      const code = exitCode(call);
      if (code !== null) parts.push(`exit ${code}`);
      const took = duration(call.startedAt, call.endedAt);
      if (took) parts.push(took);
      return parts.join(" · ");
    }
    case "Glob":
    case "Grep": {
      const pattern = text(input.pattern);
      if (!pattern) break;
      const where = path ? ` in ${fileName(path)}` : "";
      const verb = call.name === "Glob" ? "Listed" : "Searched";
      if (!done) return `${verb} \`${pattern}\`${where}`;
      const count = entries(call.output);
      return `${verb} \`${pattern}\`${where} · ${call.name === "Glob" ? plural(count, "file") : plural(count, "result")}`;
    }
    case "WebFetch": {
      const url = text(input.url);
      if (!url) break;
      let host = url;
      try {
        host = new URL(url).host;
      } catch {
        // Not a URL the browser parses: shown as given.
      }
      return `Fetched ${host}`;
    }
    case "WebSearch": {
      const query = text(input.query);
      if (query) return `Searched the web for “${query}”`;
      break;
    }
    case "TodoWrite": {
      const todos = todoItems(input);
      if (!todos) break;
      return `Plan · ${todos.filter((t) => t.status === "completed").length} of ${plural(todos.length, "step")} done`;
    }
    case "Task":
    case "Agent": {
      const description = text(input.description) ?? text(input.subagent_type);
      if (description) return `Task: ${description}`;
      break;
    }
  }
  // Anything else: the tool's name and the first text of its input.
  const first = Object.values(input).find((value): value is string => typeof value === "string" && value !== "");
  return first ? `${call.name} · ${shortCommand(first)}` : call.name;
}
