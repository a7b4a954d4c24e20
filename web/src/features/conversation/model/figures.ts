// The numbers under the conversation: how full the model's context is after the latest turn.
import type { Usage } from "@/shared/api/types";
import { formatTokens } from "@/shared/lib/format";

export interface ContextFill {
  tokens: number;
  window: number;
  /** 0 to 1. */
  share: number;
  label: string;
}

/** The context after the latest turn that reported it, or null when none did. */
export function contextFill(usages: (Usage | null | undefined)[]): ContextFill | null {
  for (let i = usages.length - 1; i >= 0; i--) {
    const usage = usages[i];
    const tokens = usage?.context_tokens;
    const window = usage?.context_window;
    if (tokens == null || window == null || window <= 0) continue;
    const share = Math.min(tokens / window, 1);
    return { tokens, window, share, label: `${formatTokens(tokens)} of ${formatTokens(window)} (${Math.round(share * 100)} %)` };
  }
  return null;
}

/** Whether a turn's usage has anything worth printing (a failed turn's zeros do not). */
export function hasFigures(usage: Usage | null | undefined, costUsd: number | null | undefined): boolean {
  const tokens = (usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0) + (usage?.cache_read_input_tokens ?? 0);
  return tokens > 0 || (costUsd ?? 0) > 0;
}
