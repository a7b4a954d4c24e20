import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ResetPasswordPanel } from "./ResetPasswordForm";

afterEach(() => vi.unstubAllGlobals());

const RULE = "The password is too short. Use at least 8 characters, for example a few words.";

describe("the reset password panel", () => {
  it("shows the server's password rule plainly, then says the password is set", async () => {
    const sent: unknown[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit = {}) => {
        const body = JSON.parse(String(init.body)) as { new_password: string };
        sent.push({ url, method: init.method, body });
        if (body.new_password.length < 8)
          return new Response(JSON.stringify({ error: { code: "invalid_password", message: RULE } }), { status: 422, headers: { "content-type": "application/json" } });
        return new Response(null, { status: 204 });
      }),
    );
    const client = new QueryClient({ defaultOptions: { mutations: { retry: false }, queries: { retry: false } } });
    const onClose = vi.fn();
    render(
      <QueryClientProvider client={client}>
        <ResetPasswordPanel userId="u2" email="member@example.com" onClose={onClose} />
      </QueryClientProvider>,
    );
    expect(screen.getByRole("region", { name: "Reset the password of member@example.com" })).toBeTruthy();
    const box = screen.getByLabelText("New password") as HTMLInputElement;
    expect(box.type).toBe("password");
    const set = screen.getByRole("button", { name: "Set password" }) as HTMLButtonElement;
    expect(set.disabled).toBe(true);

    fireEvent.change(box, { target: { value: "short" } });
    fireEvent.click(set);
    expect((await screen.findByRole("alert")).textContent).toBe(RULE);
    expect(screen.queryByRole("status")).toBeNull();
    // Typing again clears the refusal; the text stays to be fixed.
    fireEvent.change(box, { target: { value: "a much longer password" } });
    expect(screen.queryByRole("alert")).toBeNull();
    fireEvent.click(set);
    expect((await screen.findByRole("status")).textContent).toContain("The password of member@example.com is set.");
    expect(box.value).toBe("");
    expect(sent).toEqual([
      { url: "/api/v1/admin/users/u2/password", method: "POST", body: { new_password: "short" } },
      { url: "/api/v1/admin/users/u2/password", method: "POST", body: { new_password: "a much longer password" } },
    ]);

    fireEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(onClose).toHaveBeenCalledTimes(1);
  });
});
