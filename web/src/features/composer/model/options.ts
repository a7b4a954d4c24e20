// The choices of the composer's pickers.
import type { PermissionMode } from "@/shared/api/types";

export const MODES: { value: PermissionMode; label: string; hint: string }[] = [
  { value: "plan", label: "Plan", hint: "The agent reads and plans; it changes nothing." },
  { value: "ask", label: "Ask", hint: "Tool calls that change something ask first." },
  { value: "auto", label: "Auto", hint: "Safe tool calls run; risky ones ask." },
  { value: "bypassPermissions", label: "Bypass", hint: "Every tool call runs without asking." },
];

/** Models offered in the picker, named and described; the chat's own model is always offered too. */
export const MODELS: readonly { id: string; name: string; description: string }[] = [
  { id: "claude-sonnet-4-5", name: "Sonnet 4.5", description: "Fast and capable: the everyday choice for coding." },
  { id: "claude-opus-4-1", name: "Opus 4.1", description: "The most capable, for hard problems; slower and costs more." },
  { id: "claude-haiku-4-5", name: "Haiku 4.5", description: "The fastest and cheapest, for small, quick tasks." },
];

export const KNOWN_MODELS = MODELS.map((m) => m.id);

export function modelChoices(current: string): string[] {
  return KNOWN_MODELS.includes(current) ? KNOWN_MODELS : [current, ...KNOWN_MODELS];
}

/** What the picker shows for a model: its name when known, else its id as the server has it. */
export function modelName(id: string): string {
  return MODELS.find((m) => m.id === id)?.name ?? id;
}

export function modelDescription(id: string): string {
  return MODELS.find((m) => m.id === id)?.description ?? "A model this server was set up with.";
}

/** Enter sends, Shift+Enter (or Enter while an input method composes) makes a new line. */
export function isSendKey(event: { key: string; shiftKey: boolean; isComposing?: boolean; altKey?: boolean; ctrlKey?: boolean; metaKey?: boolean }): boolean {
  return event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey;
}
