// The choices of the composer's pickers.
import type { PermissionMode } from "@/shared/api/types";

export const MODES: { value: PermissionMode; label: string; hint: string }[] = [
  { value: "plan", label: "Plan", hint: "The agent reads and plans; it changes nothing." },
  { value: "ask", label: "Ask", hint: "Tool calls that change something ask first." },
  { value: "auto", label: "Auto", hint: "Safe tool calls run; risky ones ask." },
  { value: "bypassPermissions", label: "Bypass", hint: "Every tool call runs without asking." },
];

/** Models offered in the picker; the chat's own model is always offered too. */
export const KNOWN_MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"];

export function modelChoices(current: string): string[] {
  return KNOWN_MODELS.includes(current) ? KNOWN_MODELS : [current, ...KNOWN_MODELS];
}

/** Enter sends, Shift+Enter (or Enter while an input method composes) makes a new line. */
export function isSendKey(event: { key: string; shiftKey: boolean; isComposing?: boolean; altKey?: boolean; ctrlKey?: boolean; metaKey?: boolean }): boolean {
  return event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey;
}
