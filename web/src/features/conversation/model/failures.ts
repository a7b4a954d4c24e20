// What a person should read when a turn or a call failed for a reason they can act on: a
// model API error (a wrong key, an overloaded API being retried), a command the sandbox's
// egress proxy refused, and which repeated notices say the same thing. Pure functions of the
// blocks, tested without a browser.
import type { Block } from "./conversation";

/** Advice for a model API error: what went wrong and what to do, or null for any other error. */
export interface ModelAdvice {
  title: string;
  advice: string;
}

/** The HTTP status a model API error names ("API Error: 401 …", "401 authentication_error"). */
export function apiStatus(message: string): number | null {
  const match = /\b(401|403|429|500|502|503|529)\b/.exec(message);
  return match ? Number(match[1]) : null;
}

/** What to do about a model API error, by its status; null when the message names none we know. */
export function modelAdvice(code: string | null, message: string): ModelAdvice | null {
  if (code !== "model_api_error" && code !== "turn_failed") return null;
  const status = /invalid api key|authentication/i.test(message) ? 401 : apiStatus(message);
  switch (status) {
    case 401:
    case 403:
      return {
        title: "The model API refused the key",
        advice:
          "The server's ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) is wrong or has no access. Whoever runs this server sets it in the server's environment and restarts it; then press Retry.",
      };
    case 429:
      return { title: "The model API is rate-limiting this server", advice: "It refused every retry. Wait a minute, then press Retry." };
    case 529:
    case 503:
      return { title: "The model API is overloaded", advice: "It refused every retry. Try again in a little while with Retry." };
    case 500:
    case 502:
      return { title: "The model API failed", advice: "This is on the API's side. Press Retry to run the turn again." };
    default:
      return null;
  }
}

/** A refusal by the sandbox's egress proxy seen in a command's output, and the host it named. */
export interface EgressRefusal {
  /** `host` or `host:port` when the output or the command names it. */
  host: string | null;
}

const PROXY_REFUSAL = /agentbox: (\S+?) is (?:not on this sandbox's allow-list|on a loopback or private network)/;
// curl through an HTTPS proxy that answers 403 to its CONNECT: exit 56 and one of these.
const CONNECT_REFUSED = /CONNECT tunnel failed, response 403|Received HTTP code 403 from proxy after CONNECT/;

/** The host a command talks to: the first URL's host, for a refusal whose output names none. */
function hostOfCommand(command: string): string | null {
  const url = /\bhttps?:\/\/([^/\s"'`:]+(?::\d+)?)/.exec(command);
  return url?.[1] ?? null;
}

/** Whether a call's output is the egress proxy refusing its connection. */
export function egressRefusal(name: string, input: Record<string, unknown>, output: string | null): EgressRefusal | null {
  if (!output) return null;
  const named = PROXY_REFUSAL.exec(output);
  if (named) return { host: named[1] ?? null };
  const exit56 = /^Exit code 56\b/m.test(output);
  if (!CONNECT_REFUSED.test(output) && !(exit56 && /\b403\b/.test(output))) {
    // A bare "Exit code 56" from curl is a failure to receive: through this proxy, a refusal,
    // but only when the command was a network one.
    if (!(exit56 && name === "Bash" && typeof input.command === "string" && /\b(curl|wget)\b/.test(input.command))) return null;
  }
  const command = typeof input.command === "string" ? input.command : typeof input.url === "string" ? input.url : "";
  return { host: hostOfCommand(command) };
}

/**
 * The blocks worth showing of a turn: of consecutive `api_retry` notices (the CLI retrying a
 * model call) only the latest, so that a retried call is one line that counts up, and of
 * the server's demo-mode notices none once `demoShown` says the chat already showed one.
 */
export function quietBlocks(blocks: Block[], demoShown: boolean): Block[] {
  const shown: Block[] = [];
  let demo = demoShown;
  for (const block of blocks) {
    if (block.kind === "system" && block.subtype === "demo") {
      if (demo) continue;
      demo = true;
    }
    const previous = shown.at(-1);
    if (block.kind === "system" && block.subtype === "api_retry" && previous?.kind === "system" && previous.subtype === "api_retry") {
      shown[shown.length - 1] = block;
      continue;
    }
    shown.push(block);
  }
  return shown;
}

/** Whether a turn's blocks hold the demo-mode notice (a later turn of the chat skips its own). */
export function hasDemoNotice(blocks: Block[]): boolean {
  return blocks.some((b) => b.kind === "system" && b.subtype === "demo");
}

/** What a retried model call met, from the CLI's `api_retry` notice's `error_status`. */
export function retryWords(status: unknown): string {
  if (status === 429) return "The model API is rate-limiting this server";
  if (status === 529 || status === 503) return "The model API is overloaded";
  return "The model API failed";
}
