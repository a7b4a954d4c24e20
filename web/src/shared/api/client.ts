// The one way the app talks to the API: JSON in and out, the bearer token attached, and an
// expired access token refreshed once (concurrent requests share one refresh, because a
// refresh token works only once). When even that fails the session ends; the auth feature
// shows sign-in and keeps everything else, such as the composer's draft.
import type { ErrorBody, TokenResponse } from "./types";

/** An error answer of the API, or a network failure (`status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface Session {
  accessToken: string;
  refreshToken: string;
}

/** What the client needs from whoever keeps the session (the auth feature). */
export interface SessionKeeper {
  get(): Session | null;
  set(session: Session): void;
  /** The server refused the session and it could not be refreshed. */
  expire(): void;
}

let keeper: SessionKeeper = { get: () => null, set: () => {}, expire: () => {} };

export function setSessionKeeper(next: SessionKeeper): void {
  keeper = next;
}

export function sessionFromTokens(tokens: TokenResponse): Session {
  return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
}

let refreshing: Promise<boolean> | null = null;

/** Exchanges the refresh token for new tokens; `false` when the session cannot go on. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    const session = keeper.get();
    if (!session) return false;
    try {
      const response = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refreshToken }),
      });
      if (!response.ok) return false;
      keeper.set(sessionFromTokens((await response.json()) as TokenResponse));
      return true;
    } catch {
      return false;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export function authHeaders(): Record<string, string> {
  const session = keeper.get();
  return session ? { authorization: `Bearer ${session.accessToken}` } : {};
}

async function errorFrom(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as ErrorBody;
    return new ApiError(response.status, body.error.code, body.error.message);
  } catch {
    return new ApiError(response.status, "http_error", `The server answered ${response.status}.`);
  }
}

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Sent as JSON, except a Blob or ArrayBuffer (a file's bytes), which is sent as it is. */
  body?: unknown;
  /** Whether to send the bearer token and handle 401 (everything but sign-in and sign-up). */
  auth?: boolean;
  signal?: AbortSignal;
}

function isRawBody(body: unknown): body is Blob | ArrayBuffer | Uint8Array {
  return body instanceof Blob || body instanceof ArrayBuffer || body instanceof Uint8Array;
}

/**
 * Sends a request with the session's token and retries it once after a refresh on 401.
 * Resolves to the successful response itself (for bodies that are not JSON, such as a
 * file's bytes), rejects with an {@link ApiError}.
 */
export async function requestResponse(path: string, options: RequestOptions = {}): Promise<Response> {
  const { method = "GET", body, auth = true, signal } = options;
  const raw = isRawBody(body);
  const send = () =>
    fetch(path, {
      method,
      signal,
      headers: {
        ...(body === undefined ? {} : { "content-type": raw ? "application/octet-stream" : "application/json" }),
        ...(auth ? authHeaders() : {}),
      },
      body: body === undefined ? undefined : raw ? (body as BodyInit) : JSON.stringify(body),
    });
  let response: Response;
  try {
    response = await send();
    if (auth && response.status === 401 && (await refreshSession())) {
      response = await send();
    }
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "network", "The server cannot be reached. Check the connection.");
  }
  if (auth && response.status === 401) {
    keeper.expire();
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/**
 * Sends a request with the session's token and retries it once after a refresh on 401.
 * Resolves to the parsed JSON body (`undefined` for 204), rejects with an {@link ApiError}.
 */
export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await requestResponse(path, options);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** The current access token, for the one place a header cannot carry it (a WebSocket URL). */
export function accessToken(): string | null {
  return keeper.get()?.accessToken ?? null;
}

/**
 * Opens a streaming GET (the SSE endpoint) with the same token handling as {@link request}.
 * `EventSource` cannot send an Authorization header, so the stream is read with fetch.
 */
export async function openStream(
  path: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<Response> {
  const send = () =>
    fetch(path, { headers: { accept: "text/event-stream", ...headers, ...authHeaders() }, signal });
  let response = await send();
  if (response.status === 401 && (await refreshSession())) response = await send();
  if (response.status === 401) keeper.expire();
  if (!response.ok) throw await errorFrom(response);
  return response;
}
