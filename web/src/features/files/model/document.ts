// What the editor may open and how: text is edited, binary and huge files are refused with a
// reason (they can still be downloaded), and the language of a file is guessed from its name.
import type { FileEntry } from "@/shared/api/types";
import type { Conversation } from "@/features/conversation/model/conversation";

/** The largest file the editor opens: past this a browser editor gets slow, and a download serves better. */
export const MAX_EDITABLE_BYTES = 2 * 1024 * 1024;
/** The server's limit for one file read or written through the API. */
export const MAX_TRANSFER_BYTES = 64 * 1024 * 1024;

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

/** Why the editor will not open this entry (judged from its listing), or `null`. */
export function refusalFor(entry: Pick<FileEntry, "kind" | "size">): string | null {
  if (entry.kind === "dir") return "This is a directory.";
  if (entry.kind === "other") return "This is not a regular file (a device, socket or pipe); it cannot be opened.";
  if (entry.size > MAX_EDITABLE_BYTES) {
    return `This file is too large to edit here (${formatSize(entry.size)}; the editor opens files up to ${formatSize(MAX_EDITABLE_BYTES)}). Download it instead.`;
  }
  return null;
}

export type Content = { kind: "text"; text: string } | { kind: "binary" };

/**
 * Text or not: a NUL byte near the start, or bytes that are not UTF-8, mean binary. Editing
 * such a file as text and saving it would corrupt it, so it is refused.
 */
export function classifyContent(bytes: Uint8Array): Content {
  if (bytes.subarray(0, 8192).includes(0)) return { kind: "binary" };
  try {
    return { kind: "text", text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { kind: "binary" };
  }
}

export const BINARY_MESSAGE = "This file is binary (not UTF-8 text), so the editor does not open it. Download it instead.";

/** The languages the editor highlights; each is loaded only when a file needs it. */
export type LanguageId =
  | "javascript"
  | "jsx"
  | "typescript"
  | "tsx"
  | "json"
  | "python"
  | "rust"
  | "go"
  | "markdown"
  | "html"
  | "css"
  | "yaml"
  | "sql"
  | "cpp"
  | "java"
  | "xml"
  | "shell"
  | "toml"
  | "dockerfile";

const byExtension: Record<string, LanguageId> = {
  js: "javascript", mjs: "javascript", cjs: "javascript", jsx: "jsx",
  ts: "typescript", mts: "typescript", cts: "typescript", tsx: "tsx",
  json: "json", jsonc: "json", ipynb: "json",
  py: "python", pyi: "python",
  rs: "rust", go: "go",
  md: "markdown", markdown: "markdown",
  html: "html", htm: "html", vue: "html", svelte: "html",
  css: "css", scss: "css", less: "css",
  yml: "yaml", yaml: "yaml",
  sql: "sql",
  c: "cpp", h: "cpp", cc: "cpp", cpp: "cpp", cxx: "cpp", hpp: "cpp", hh: "cpp",
  java: "java", kt: "java",
  xml: "xml", svg: "xml", xsd: "xml", plist: "xml",
  sh: "shell", bash: "shell", zsh: "shell",
  toml: "toml",
};

const byName: Record<string, LanguageId> = {
  Dockerfile: "dockerfile", Containerfile: "dockerfile",
  ".bashrc": "shell", ".bash_profile": "shell", ".profile": "shell", ".zshrc": "shell",
  "Cargo.lock": "toml", Pipfile: "toml",
};

export function languageFor(path: string): LanguageId | null {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const known = byName[name];
  if (known) return known;
  const dot = name.lastIndexOf(".");
  if (dot <= 0 && !name.startsWith(".")) return null;
  return byExtension[name.slice(dot + 1).toLowerCase()] ?? null;
}

/** Tools whose completion may have changed files in the workspace. */
const FILE_TOOLS = new Set(["Write", "Edit", "MultiEdit", "NotebookEdit", "Bash"]);

/**
 * A mark that changes whenever the agent may have changed files: a file tool finished, or a
 * turn ended. The file tree refreshes when it changes. It is derived from the conversation
 * (which the chat's stream keeps current), so a replay or a refetch never adds a refresh.
 */
export function fileChangeMark(conversation: Conversation | undefined): string {
  if (!conversation) return "";
  let tools = 0;
  let finished = 0;
  for (const message of conversation.messages) {
    if (message.role === "assistant" && message.status !== "in_progress") finished += 1;
    for (const block of message.blocks) {
      if (block.kind === "tool" && block.state !== "running" && FILE_TOOLS.has(block.name)) tools += 1;
    }
  }
  return `${tools}:${finished}`;
}

export interface UploadPlan {
  uploads: { file: File; path: string }[];
  refused: string[];
}

/** Where each dropped or picked file goes, refusing those the server would not take. */
export function planUploads(files: readonly { file: File; relativePath: string }[], dir: string): UploadPlan {
  const plan: UploadPlan = { uploads: [], refused: [] };
  for (const { file, relativePath } of files) {
    const path = dir === "" ? relativePath : `${dir}/${relativePath}`;
    if (file.size > MAX_TRANSFER_BYTES) {
      plan.refused.push(`${relativePath} is ${formatSize(file.size)}; at most ${formatSize(MAX_TRANSFER_BYTES)} can be uploaded.`);
    } else {
      plan.uploads.push({ file, path });
    }
  }
  return plan;
}
