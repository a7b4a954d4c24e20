import { afterEach, describe, expect, it, vi } from "vitest";
import { setSessionKeeper, type Session } from "@/shared/api/client";
import { terminalUrl, tokenExpiry } from "./terminal";

function jwt(exp: number): string {
  const part = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${part({ alg: "HS256" })}.${part({ sub: "u", exp })}.signature`;
}

function keep(session: Session | null) {
  const state = { session };
  setSessionKeeper({ get: () => state.session, set: (s) => (state.session = s), expire: () => (state.session = null) });
  return state;
}

afterEach(() => vi.unstubAllGlobals());

describe("the terminal URL", () => {
  it("reads a token's expiry and tolerates tokens that are not JWTs", () => {
    expect(tokenExpiry(jwt(1_700_000_000))).toBe(1_700_000_000);
    expect(tokenExpiry("opaque")).toBeNull();
    expect(tokenExpiry("a.!!!.c")).toBeNull();
  });

  it("carries the token and either the size of a new shell or the shell to reattach to", async () => {
    const token = jwt(2_000_000_000);
    keep({ accessToken: token, refreshToken: "r" });
    const fresh = new URL((await terminalUrl("c1", { session: null, cols: 120, rows: 40 })) ?? "");
    expect(fresh.protocol).toBe("ws:");
    expect(fresh.pathname).toBe("/api/v1/chats/c1/terminal");
    expect(Object.fromEntries(fresh.searchParams)).toEqual({ access_token: token, cols: "120", rows: "40" });
    const again = new URL((await terminalUrl("c1", { session: "s1", cols: 120, rows: 40 })) ?? "");
    expect(Object.fromEntries(again.searchParams)).toEqual({ access_token: token, session: "s1" });
  });

  it("refreshes a token that is about to expire, and has no URL when signed out", async () => {
    const now = 1_000_000_000_000;
    const state = keep({ accessToken: jwt(now / 1000 + 10), refreshToken: "r1" });
    const fresh = jwt(now / 1000 + 3600);
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ access_token: fresh, refresh_token: "r2", token_type: "bearer", expires_in: 3600 }), { status: 200 }));
    const url = new URL((await terminalUrl("c1", { session: null, cols: 80, rows: 24 }, () => now)) ?? "");
    expect(url.searchParams.get("access_token")).toBe(fresh);
    expect(state.session?.refreshToken).toBe("r2");
    keep(null);
    expect(await terminalUrl("c1", { session: null, cols: 80, rows: 24 })).toBeNull();
  });
});
