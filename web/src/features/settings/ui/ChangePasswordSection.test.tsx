import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useSessionStore } from "@/features/auth/model/session";
import { ChangePasswordSection } from "./ChangePasswordSection";

type Sent = { url: string; method: string; body: unknown };

function serve() {
  const sent: Sent[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const body = init.body ? (JSON.parse(String(init.body)) as { current_password: string }) : null;
      sent.push({ url, method: init.method ?? "GET", body });
      const answer =
        body?.current_password === "right one"
          ? { status: 200, body: { access_token: "new-access", refresh_token: "new-refresh", token_type: "bearer", expires_in: 3600 } }
          : { status: 403, body: { error: { code: "wrong_password", message: "The current password is wrong." } } };
      return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "content-type": "application/json" } });
    }),
  );
  return sent;
}

function fill(current: string, next: string, again: string) {
  fireEvent.change(screen.getByLabelText("Current password"), { target: { value: current } });
  fireEvent.change(screen.getByLabelText("New password"), { target: { value: next } });
  fireEvent.change(screen.getByLabelText("New password again"), { target: { value: again } });
}

afterEach(() => {
  vi.unstubAllGlobals();
  useSessionStore.getState().signedOut();
});

describe("the change password form", () => {
  it("refuses differing new passwords, shows the server's refusal, and keeps the session with the new tokens", async () => {
    useSessionStore.getState().signedIn({ accessToken: "old-access", refreshToken: "old-refresh" }, "a@example.com");
    const sent = serve();
    const client = new QueryClient({ defaultOptions: { mutations: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <ChangePasswordSection />
      </QueryClientProvider>,
    );
    const submit = screen.getByRole("button", { name: "Change password" });

    fill("wrong one", "a new long password", "a new long passwort");
    expect(screen.getByRole("alert").textContent).toBe("The new passwords differ.");
    expect((submit as HTMLButtonElement).disabled).toBe(true);

    fill("wrong one", "a new long password", "a new long password");
    fireEvent.click(submit);
    expect((await screen.findByRole("alert")).textContent).toContain("The current password is wrong.");
    expect(useSessionStore.getState().session?.accessToken).toBe("old-access");

    fill("right one", "a new long password", "a new long password");
    fireEvent.click(submit);
    expect((await screen.findByRole("status")).textContent).toBe("Password changed.");
    expect(sent.at(-1)).toEqual({ url: "/api/v1/auth/password", method: "POST", body: { current_password: "right one", new_password: "a new long password" } });
    expect(useSessionStore.getState().session?.accessToken).toBe("new-access");
    expect((screen.getByLabelText("Current password") as HTMLInputElement).value).toBe("");
  });
});
