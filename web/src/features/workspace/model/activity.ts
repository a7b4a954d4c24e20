// The conversation as the workspace sees it: how many file changes the agent made (the panel
// opens on the first), and which workspace file a path on a tool card names. Pure functions.
import type { MessageView } from "@/features/conversation/model/conversation";

const FILE_TOOLS = new Set(["Write", "Edit", "MultiEdit", "NotebookEdit"]);

/** The agent's file-changing calls in the conversation. */
export function fileActivity(messages: readonly MessageView[]): number {
  let count = 0;
  for (const message of messages) for (const block of message.blocks) if (block.kind === "tool" && FILE_TOOLS.has(block.name)) count += 1;
  return count;
}

const HOME = "/home/user";

/**
 * A path as the files API names it (relative to the home directory), from an absolute path
 * under `/home/user` or a relative one; null for anything outside (`/etc/hosts`, `../x`).
 */
export function workspacePath(path: string): string | null {
  const trimmed = path.trim();
  if (trimmed === "") return null;
  let relative: string;
  if (trimmed === HOME || trimmed === `${HOME}/`) return null;
  if (trimmed.startsWith(`${HOME}/`)) relative = trimmed.slice(HOME.length + 1);
  else if (trimmed.startsWith("/")) return null;
  else relative = trimmed.replace(/^\.\//, "");
  const parts = relative.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..")) return null;
  return parts.join("/");
}

/** The workspace files a tool call names: its file argument, and the paths a Glob or Grep listed. */
export function pathsOfCall(name: string, input: Record<string, unknown>, output: string | null): string[] {
  const paths: string[] = [];
  for (const key of ["file_path", "notebook_path"]) {
    const value = input[key];
    if (typeof value === "string" && workspacePath(value) !== null) paths.push(value);
  }
  if ((name === "Glob" || name === "Grep") && output) {
    for (const line of output.split("\n")) {
      // Grep's content mode writes "path:line:text"; the path is what opens.
      const candidate = line.trim().split(":")[0] ?? "";
      if (candidate.startsWith(`${HOME}/`) && workspacePath(candidate) !== null && !paths.includes(candidate)) paths.push(candidate);
    }
  }
  return paths;
}
