import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SecretInfo } from "../api/secrets";
import { ChatSecretsSection } from "./ChatSecretsSection";

type Sent = { url: string; method: string; body: unknown };

const info = (name: string, masked: string): SecretInfo => ({
  name,
  masked,
  kind: name.startsWith("ANTHROPIC_") ? "model_credential" : "environment",
  scope: "chat",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
});

/** A server that keeps one chat's overrides and knows no other chat. */
function serveChatSecrets(initial: SecretInfo[]) {
  let secrets = initial;
  const sent: Sent[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const request = { url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : null };
      sent.push(request);
      const reply = (status: number, body?: unknown) =>
        new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
      if (!url.startsWith("/api/v1/chats/c1/secrets")) return reply(404, { error: { code: "chat_not_found", message: "No such chat." } });
      if (request.method === "GET") return reply(200, secrets);
      const name = decodeURIComponent(url.split("/").pop() ?? "");
      if (request.method === "DELETE") {
        secrets = secrets.filter((s) => s.name !== name);
        return reply(204);
      }
      const value = (request.body as { value: string }).value;
      if (value.length > 40) return reply(422, { error: { code: "secret_too_large", message: "A secret's value may have at most 40 bytes." } });
      const secret = info(name, `${value.slice(0, 3)}…${value.slice(-4)}`);
      secrets = [...secrets.filter((s) => s.name !== name), secret];
      return reply(200, secret);
    }),
  );
  return sent;
}

function wrap(chatId: string) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <ChatSecretsSection chatId={chatId} />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the chat's secrets section", () => {
  it("says it overrides the account's secrets, adds one masked and deletes it, on the chat's URLs", async () => {
    const sent = serveChatSecrets([]);
    wrap("c1");
    expect(screen.getByRole("heading", { name: "Secrets for this chat" })).toBeTruthy();
    expect(screen.getByText(/override your account’s secrets of the same name, in this chat only/).textContent).toContain("from the chat’s next turn");
    await screen.findByText("No secrets for this chat: it uses your account’s.");

    fireEvent.change(screen.getByLabelText("Secret name"), { target: { value: "GITHUB_TOKEN" } });
    const valueBox = screen.getByLabelText("Secret value") as HTMLInputElement;
    expect(valueBox.type).toBe("password");
    fireEvent.change(valueBox, { target: { value: "ghp_chat0123456789WXYZ" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    const list = await screen.findByRole("list", { name: "Secrets for this chat" });
    expect(within(list).getByLabelText("Value of GITHUB_TOKEN").textContent).toBe("ghp…WXYZ");
    expect(valueBox.value).toBe("");
    expect(document.body.textContent).not.toContain("0123456789");

    fireEvent.click(within(list).getByRole("button", { name: "Delete GITHUB_TOKEN" }));
    await screen.findByText("No secrets for this chat: it uses your account’s.");
    expect(sent.map((r) => [r.method, r.url, r.body])).toEqual([
      ["GET", "/api/v1/chats/c1/secrets", null],
      ["PUT", "/api/v1/chats/c1/secrets/GITHUB_TOKEN", { value: "ghp_chat0123456789WXYZ" }],
      ["DELETE", "/api/v1/chats/c1/secrets/GITHUB_TOKEN", null],
    ]);
  });

  it("shows the server's refusal and keeps the form filled", async () => {
    serveChatSecrets([info("NPM_TOKEN", "npm…abcd")]);
    wrap("c1");
    await screen.findByLabelText("Value of NPM_TOKEN");
    fireEvent.change(screen.getByLabelText("Secret name"), { target: { value: "NPM_TOKEN" } });
    fireEvent.change(screen.getByLabelText("Secret value"), { target: { value: "x".repeat(41) } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    expect((await screen.findByRole("alert")).textContent).toContain("at most 40 bytes");
    expect((screen.getByLabelText("Secret name") as HTMLInputElement).value).toBe("NPM_TOKEN");
    expect(screen.getByLabelText("Value of NPM_TOKEN").textContent).toBe("npm…abcd");
  });

  it("says when the chat's secrets cannot be loaded", async () => {
    serveChatSecrets([]);
    wrap("gone");
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("The secrets could not be loaded."));
  });
});
