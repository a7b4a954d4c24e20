// The keys a focused tool request answers to: A approves, D opens the denial (whose reason
// the user may write). Not while a text box or a control that takes letters has the focus,
// and not with a modifier (the browser's and the system's shortcuts stay theirs).

export type Shortcut = "approve" | "deny";

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

export function shortcutOf(key: string, targetTag: string, modified: boolean): Shortcut | null {
  if (modified || TYPING.has(targetTag.toUpperCase())) return null;
  switch (key.toLowerCase()) {
    case "a":
      return "approve";
    case "d":
      return "deny";
    default:
      return null;
  }
}
