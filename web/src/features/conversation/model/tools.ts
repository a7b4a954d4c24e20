// What a tool call card shows, by tool: the command of a Bash call, the file and a diff of a
// Write or an Edit, the path or pattern of a Read, Glob or Grep, and for any other tool its
// input as JSON. Pure functions, so that the rules are tested without a browser.
import { diffLines } from "diff";

export type ToolView =
  | { kind: "bash"; command: string; description: string | null }
  | { kind: "diff"; path: string; changes: DiffLine[] }
  | { kind: "lookup"; target: string }
  | { kind: "generic"; input: string };

export interface DiffLine {
  sign: "+" | "-" | " ";
  text: string;
}

function text(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/** Line diff of `before` → `after`, with unchanged runs longer than `context * 2` cut. */
export function lineDiff(before: string, after: string, context = 3): DiffLine[] {
  const out: DiffLine[] = [];
  for (const part of diffLines(before, after)) {
    const lines = part.value.replace(/\n$/, "").split("\n");
    if (part.added || part.removed) {
      for (const line of lines) out.push({ sign: part.added ? "+" : "-", text: line });
    } else if (lines.length > context * 2 + 1) {
      for (const line of lines.slice(0, context)) out.push({ sign: " ", text: line });
      out.push({ sign: " ", text: `… ${lines.length - context * 2} unchanged lines …` });
      for (const line of lines.slice(-context)) out.push({ sign: " ", text: line });
    } else {
      for (const line of lines) out.push({ sign: " ", text: line });
    }
  }
  return out;
}

export function toolView(name: string, input: Record<string, unknown>): ToolView {
  const path = text(input.file_path) ?? text(input.notebook_path) ?? text(input.path);
  switch (name) {
    case "Bash": {
      const command = text(input.command);
      if (command !== null) return { kind: "bash", command, description: text(input.description) };
      break;
    }
    case "Write": {
      const content = text(input.content);
      if (path && content !== null) return { kind: "diff", path, changes: lineDiff("", content) };
      break;
    }
    case "Edit": {
      const before = text(input.old_string);
      const after = text(input.new_string);
      if (path && before !== null && after !== null) return { kind: "diff", path, changes: lineDiff(before, after) };
      break;
    }
    case "MultiEdit": {
      const edits = Array.isArray(input.edits) ? (input.edits as Record<string, unknown>[]) : null;
      if (path && edits) {
        const changes = edits.flatMap((edit, index) => [
          ...(index > 0 ? [{ sign: " " as const, text: "⋯" }] : []),
          ...lineDiff(text(edit.old_string) ?? "", text(edit.new_string) ?? ""),
        ]);
        return { kind: "diff", path, changes };
      }
      break;
    }
    case "Read":
    case "NotebookRead":
      if (path) return { kind: "lookup", target: path };
      break;
    case "Glob":
    case "Grep": {
      const pattern = text(input.pattern);
      if (pattern !== null) return { kind: "lookup", target: path ? `${pattern}  in ${path}` : pattern };
      break;
    }
  }
  return { kind: "generic", input: JSON.stringify(input, null, 2) };
}

/** One line that names the call in the card's header. */
export function toolSubtitle(view: ToolView): string {
  switch (view.kind) {
    case "bash":
      return view.description ?? view.command.split("\n")[0] ?? "";
    case "diff":
      return view.path;
    case "lookup":
      return view.target;
    case "generic":
      return "";
  }
}

/** The number of lines above which a card's output starts collapsed. */
export const LONG_OUTPUT_LINES = 12;

export function lineCount(value: string | null): number {
  return value ? value.split("\n").length : 0;
}
