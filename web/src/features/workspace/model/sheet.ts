// The workspace sheet of a phone: which keys put it away. Apart from panel.ts so that it loads
// with the panel, not with the first visit.

/**
 * Whether a key closes the sheet: Escape, unless something inside has a use for it (a terminal,
 * the editor's search, a dialog) or it was taken already.
 */
export function closesSheet(key: string, target: Element | null, taken: boolean): boolean {
  if (key !== "Escape" || taken) return false;
  return !target?.closest(".terminal-host, .cm-editor, dialog");
}
