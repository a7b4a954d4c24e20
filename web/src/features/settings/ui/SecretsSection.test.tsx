import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SecretInfo } from "../api/secrets";
import { SecretsSection } from "./SecretsSection";

type Sent = { url: string; method: string; body: unknown };

const info = (name: string, masked: string): SecretInfo => ({
  name,
  masked,
  kind: name.startsWith("ANTHROPIC_") ? "model_credential" : "environment",
  scope: "user",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
});

/** A server that keeps secrets (masked as the real one does for long values). */
function serveSecrets(initial: SecretInfo[]) {
  let secrets = initial;
  const sent: Sent[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const request = { url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : null };
      sent.push(request);
      const reply = (status: number, body?: unknown) =>
        new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
      if (request.method === "GET") return reply(200, secrets);
      const name = decodeURIComponent(url.split("/").pop() ?? "");
      if (request.method === "DELETE") {
        secrets = secrets.filter((s) => s.name !== name);
        return reply(204);
      }
      if (name === "PATH") return reply(422, { error: { code: "reserved_secret_name", message: "`PATH` is reserved: the sandbox sets it itself" } });
      const value = (request.body as { value: string }).value;
      const secret = info(name, `${value.slice(0, 3)}…${value.slice(-4)}`);
      secrets = [...secrets.filter((s) => s.name !== name), secret];
      return reply(200, secret);
    }),
  );
  return sent;
}

function wrap() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <SecretsSection />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the secrets section", () => {
  it("lists masked values, adds one and deletes one", async () => {
    const sent = serveSecrets([info("GITHUB_TOKEN", "ghp…wxyz")]);
    wrap();
    const list = await screen.findByRole("list", { name: "Secrets" });
    expect(within(list).getByLabelText("Value of GITHUB_TOKEN").textContent).toBe("ghp…wxyz");

    fireEvent.change(screen.getByLabelText("Secret name"), { target: { value: "ANTHROPIC_API_KEY" } });
    const valueBox = screen.getByLabelText("Secret value") as HTMLInputElement;
    expect(valueBox.type).toBe("password");
    fireEvent.change(valueBox, { target: { value: "sk-ant-0123456789abcd" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    await within(list).findByLabelText("Value of ANTHROPIC_API_KEY");
    expect(within(list).getByLabelText("Value of ANTHROPIC_API_KEY").textContent).toBe("sk-…abcd");
    expect(within(list).getByText("model credential")).toBeTruthy();
    expect(valueBox.value).toBe("");
    // The value went to the server once and is nowhere on the page.
    expect(document.body.textContent).not.toContain("0123456789");

    fireEvent.click(screen.getByRole("button", { name: "Delete GITHUB_TOKEN" }));
    await waitFor(() => expect(within(list).queryByText("GITHUB_TOKEN")).toBeNull());
    expect(sent.filter((r) => r.method !== "GET").map((r) => [r.method, r.url, r.body])).toEqual([
      ["PUT", "/api/v1/secrets/ANTHROPIC_API_KEY", { value: "sk-ant-0123456789abcd" }],
      ["DELETE", "/api/v1/secrets/GITHUB_TOKEN", null],
    ]);
  });

  it("says why a name is refused, before and after sending", async () => {
    serveSecrets([]);
    wrap();
    await screen.findByText("No secrets yet.");
    const save = screen.getByRole("button", { name: "Save secret" }) as HTMLButtonElement;
    fireEvent.change(screen.getByLabelText("Secret name"), { target: { value: "1BAD" } });
    fireEvent.change(screen.getByLabelText("Secret value"), { target: { value: "v" } });
    expect(screen.getByText(/not starting with a digit/)).toBeTruthy();
    expect(save.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText("Secret name"), { target: { value: "PATH" } });
    expect(save.disabled).toBe(false);
    fireEvent.click(save);
    expect((await screen.findByRole("alert")).textContent).toContain("`PATH` is reserved");
  });
});
