// How a terminal reaches the server: the WebSocket URL (with the access token in the query,
// since a browser cannot set headers on a WebSocket) and the probe that explains a failed
// attempt through an ordinary API call.
import { accessToken, ApiError, refreshSession, request } from "@/shared/api/client";
import type { SandboxInfo } from "@/shared/api/types";
import type { ProbeResult } from "../model/connection";

/** Seconds since the epoch at which a JWT expires, or `null` if it cannot be read. */
export function tokenExpiry(token: string): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}

/**
 * The URL of a terminal WebSocket. A token about to expire is refreshed first: the server
 * would refuse the upgrade, and the browser would not say why.
 */
export async function terminalUrl(
  chatId: string,
  params: { session: string | null; cols: number; rows: number },
  now: () => number = Date.now,
): Promise<string | null> {
  let token = accessToken();
  if (!token) return null;
  const expiry = tokenExpiry(token);
  if (expiry !== null && expiry * 1000 - now() < 30_000 && (await refreshSession())) token = accessToken();
  if (!token) return null;
  const query = new URLSearchParams({ access_token: token });
  if (params.session) query.set("session", params.session);
  else {
    query.set("cols", String(params.cols));
    query.set("rows", String(params.rows));
  }
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/api/v1/chats/${chatId}/terminal?${query}`;
}

/** Asks the API about the chat after a terminal attempt failed (refreshing the token if need be). */
export async function probeChat(chatId: string): Promise<ProbeResult> {
  try {
    await request<SandboxInfo>(`/api/v1/chats/${chatId}/sandbox`);
    return "ok";
  } catch (error) {
    if (error instanceof ApiError) {
      if (error.status === 401) return "unauthorized";
      if (error.status === 404) return "gone";
    }
    return "offline";
  }
}
