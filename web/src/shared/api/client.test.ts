import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, request, setSessionKeeper, type Session } from "./client";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function keeper(initial: Session | null) {
  const state = { session: initial, expired: 0 };
  setSessionKeeper({
    get: () => state.session,
    set: (session) => {
      state.session = session;
    },
    expire: () => {
      state.expired += 1;
      state.session = null;
    },
  });
  return state;
}

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("refreshes an expired token once for concurrent requests and retries them", async () => {
    const state = keeper({ accessToken: "old", refreshToken: "r1" });
    let refreshes = 0;
    vi.stubGlobal("fetch", async (path: string, init: RequestInit = {}) => {
      if (path === "/api/v1/auth/refresh") {
        refreshes += 1;
        expect(JSON.parse(String(init.body))).toEqual({ refresh_token: "r1" });
        return json(200, { access_token: "new", refresh_token: "r2", token_type: "bearer", expires_in: 60 });
      }
      const auth = new Headers(init.headers).get("authorization");
      return auth === "Bearer new" ? json(200, { path }) : json(401, { error: { code: "unauthorized", message: "expired" } });
    });
    const [a, b] = await Promise.all([request<{ path: string }>("/api/v1/a"), request<{ path: string }>("/api/v1/b")]);
    expect([a.path, b.path]).toEqual(["/api/v1/a", "/api/v1/b"]);
    expect(refreshes).toBe(1);
    expect(state.session).toEqual({ accessToken: "new", refreshToken: "r2" });
    expect(state.expired).toBe(0);
  });

  it("ends the session when the refresh is refused", async () => {
    const state = keeper({ accessToken: "old", refreshToken: "used" });
    vi.stubGlobal("fetch", async (path: string) =>
      path === "/api/v1/auth/refresh"
        ? json(401, { error: { code: "invalid_refresh_token", message: "sign in again" } })
        : json(401, { error: { code: "unauthorized", message: "expired" } }),
    );
    const error = await request("/api/v1/chats").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect(state.expired).toBe(1);
  });

  it("turns error bodies and network failures into ApiErrors", async () => {
    keeper(null);
    vi.stubGlobal("fetch", async () => json(409, { error: { code: "turn_in_progress", message: "A turn is running." } }));
    await expect(request("/api/v1/x", { method: "POST", body: {} })).rejects.toMatchObject({ status: 409, code: "turn_in_progress", message: "A turn is running." });
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(request("/api/v1/x")).rejects.toMatchObject({ status: 0, code: "network" });
  });
});
