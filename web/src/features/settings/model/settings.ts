// Pure pieces of the settings forms: the thinking budget choices and the hosts list.

/** The choices offered for a chat's thinking budget; the server accepts 0 or 1024–128000. */
export const THINKING_PRESETS: readonly { label: string; tokens: number | null }[] = [
  { label: "CLI default", tokens: null },
  { label: "Off", tokens: 0 },
  { label: "4k tokens", tokens: 4096 },
  { label: "16k tokens", tokens: 16384 },
  { label: "32k tokens", tokens: 32768 },
];

/** A `<select>` value for a budget: `null` and numbers cannot be option values as they are. */
export function thinkingValue(tokens: number | null | undefined): string {
  return tokens === null || tokens === undefined ? "default" : String(tokens);
}

export function thinkingFromValue(value: string): number | null {
  return value === "default" ? null : Number(value);
}

/** The options to show: the presets, plus the chat's own budget when it is none of them. */
export function thinkingOptions(current: number | null | undefined): { label: string; value: string }[] {
  const options = THINKING_PRESETS.map((p) => ({ label: p.label, value: thinkingValue(p.tokens) }));
  const value = thinkingValue(current);
  if (!options.some((o) => o.value === value)) {
    options.push({ label: `${(current ?? 0).toLocaleString("en")} tokens`, value });
  }
  return options;
}

/** The hosts list with `host` added: trimmed, and unchanged when it is already there. */
export function withHost(hosts: readonly string[], host: string): string[] {
  const added = host.trim();
  if (!added || hosts.includes(added)) return [...hosts];
  return [...hosts, added];
}
