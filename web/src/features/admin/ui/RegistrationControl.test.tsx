import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adminKeys } from "../api/admin";
import { RegistrationControl } from "./RegistrationControl";

afterEach(() => vi.unstubAllGlobals());

describe("the registration control", () => {
  it("sends the chosen mode, keeps the server's answer, and shows a refusal", async () => {
    const sent: unknown[] = [];
    let refuse = false;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit = {}) => {
        sent.push({ url, method: init.method, body: JSON.parse(String(init.body)) });
        const answer = refuse
          ? { status: 403, body: { error: { code: "admin_only", message: "Only administrators can do this." } } }
          : { status: 200, body: { registration: "closed", invite_ttl_hours: 168 } };
        return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "content-type": "application/json" } });
      }),
    );
    const client = new QueryClient({ defaultOptions: { mutations: { retry: false }, queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <RegistrationControl settings={{ registration: "open", invite_ttl_hours: 168 }} />
      </QueryClientProvider>,
    );
    fireEvent.change(screen.getByLabelText("Registration"), { target: { value: "closed" } });
    await waitFor(() => expect(client.getQueryData(adminKeys.settings())).toEqual({ registration: "closed", invite_ttl_hours: 168 }));
    expect(sent).toEqual([{ url: "/api/v1/admin/settings", method: "PUT", body: { registration: "closed" } }]);

    refuse = true;
    fireEvent.change(screen.getByLabelText("Registration"), { target: { value: "invite" } });
    expect((await screen.findByRole("alert")).textContent).toBe("Only administrators can do this.");
  });
});
