import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Chat } from "@/shared/api/types";
import type { StoredPermissionRule, UserSettings } from "../api/settings";
import { AccountSettingsDialog } from "./AccountSettingsDialog";
import { ChatSettingsDialog } from "./ChatSettingsDialog";

type Sent = { url: string; method: string; body: unknown };
type Answer = { status: number; body?: unknown };

/** Answers API calls with `answer` and records what was sent. */
function serve(answer: (request: Sent) => Answer) {
  const sent: Sent[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const request = { url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : null };
      sent.push(request);
      const { status, body } = answer(request);
      return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
    }),
  );
  return sent;
}

const patches = (sent: Sent[]) => sent.filter((r) => r.method === "PATCH" || r.method === "DELETE");
const invalid = (message: string): Answer => ({ status: 422, body: { error: { code: "invalid_host", message } } });

function wrap(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(<QueryClientProvider client={client}>{children}</QueryClientProvider>);
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the account settings dialog", () => {
  function serveSettings(initial: UserSettings) {
    let settings = initial;
    return serve(({ url, method, body }) => {
      // The dialog's secrets section reads its own list.
      if (url === "/api/v1/secrets") return { status: 200, body: [] };
      expect(url).toBe("/api/v1/settings");
      if (method === "GET") return { status: 200, body: settings };
      const patch = body as { custom_instructions?: string; sandbox_allowed_hosts?: string[] };
      if (patch.sandbox_allowed_hosts?.includes("bad host!")) return invalid('"bad host!" is not a valid host pattern');
      if ((patch.custom_instructions?.length ?? 0) > 20) return { status: 422, body: { error: { code: "instructions_too_long", message: "Custom instructions may have at most 20 bytes." } } };
      settings = {
        ...settings,
        custom_instructions: patch.custom_instructions === undefined ? settings.custom_instructions : patch.custom_instructions.trim() || null,
        sandbox_allowed_hosts: patch.sandbox_allowed_hosts ?? settings.sandbox_allowed_hosts,
      };
      return { status: 200, body: settings };
    });
  }

  it("saves the instructions explicitly and shows the server's error", async () => {
    const sent = serveSettings({ custom_instructions: "Be brief.", sandbox_allowed_hosts: [], server_default_model: "claude-sonnet-4-5" });
    wrap(<AccountSettingsDialog open onClose={() => {}} />);
    const box = (await screen.findByLabelText(/Custom instructions/)) as HTMLTextAreaElement;
    expect(box.value).toBe("Be brief.");
    const save = screen.getByRole("button", { name: "Save instructions" }) as HTMLButtonElement;
    expect(save.disabled).toBe(true);
    fireEvent.change(box, { target: { value: "This is far too long for the limit." } });
    fireEvent.click(save);
    expect((await screen.findByRole("alert")).textContent).toBe("Custom instructions may have at most 20 bytes.");
    // The text stays for the user to shorten.
    expect(box.value).toBe("This is far too long for the limit.");
    fireEvent.change(box, { target: { value: "Use tabs. " } });
    expect(screen.queryByRole("alert")).toBeNull();
    fireEvent.click(save);
    await screen.findByText("Saved.");
    expect(box.value).toBe("Use tabs.");
    expect(patches(sent).map((r) => r.body)).toEqual([{ custom_instructions: "This is far too long for the limit." }, { custom_instructions: "Use tabs. " }]);
  });

  it("adds and removes hosts, and says plainly which host is invalid", async () => {
    const sent = serveSettings({ custom_instructions: null, sandbox_allowed_hosts: ["a.example.com"], server_default_model: "claude-sonnet-4-5" });
    wrap(<AccountSettingsDialog open onClose={() => {}} />);
    const input = await screen.findByLabelText("Host to allow");
    fireEvent.change(input, { target: { value: "bad host!" } });
    fireEvent.click(screen.getByRole("button", { name: "Add" }));
    expect((await screen.findByRole("alert")).textContent).toBe('"bad host!" is not a valid host pattern');
    fireEvent.change(input, { target: { value: " *.npmjs.org " } });
    fireEvent.click(screen.getByRole("button", { name: "Add" }));
    const list = await screen.findByRole("list", { name: "Allowed hosts" });
    await within(list).findByText("*.npmjs.org");
    expect((input as HTMLInputElement).value).toBe("");
    fireEvent.click(screen.getByRole("button", { name: "Remove a.example.com" }));
    await waitFor(() => expect(within(list).queryByText("a.example.com")).toBeNull());
    expect(patches(sent).map((r) => r.body)).toEqual([
      { sandbox_allowed_hosts: ["a.example.com", "bad host!"] },
      { sandbox_allowed_hosts: ["a.example.com", "*.npmjs.org"] },
      { sandbox_allowed_hosts: ["*.npmjs.org"] },
    ]);
  });

  it("closes on Escape", async () => {
    serveSettings({ custom_instructions: null, sandbox_allowed_hosts: [], server_default_model: "claude-sonnet-4-5" });
    const onClose = vi.fn();
    wrap(<AccountSettingsDialog open onClose={onClose} />);
    const dialog = await screen.findByRole("dialog", { name: "Settings" });
    fireEvent(dialog, new Event("cancel", { cancelable: true }));
    expect(onClose).toHaveBeenCalledTimes(1);
    fireEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(onClose).toHaveBeenCalledTimes(2);
  });
});

describe("the chat settings dialog", () => {
  const chat: Chat = {
    id: "c1",
    title: "A chat",
    model: "claude-sonnet-4-5",
    permission_mode: "ask",
    status: "idle",
    pending_requests: 0,
    last_event_id: 0,
    sandbox_provider: "local",
    sandbox_status: "running",
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    custom_instructions: null,
    max_thinking_tokens: null,
    pinned: false,
    archived: false,
  };
  const rule: StoredPermissionRule = { id: "r1", tool_name: "Bash", rule_content: "npm test *", created_at: "2026-01-01T00:00:00Z" };

  function serveChat(rules: StoredPermissionRule[]) {
    let current = chat;
    let left = rules;
    return serve(({ url, method, body }) => {
      if (url === "/api/v1/chats/c1/permissions/rules") return { status: 200, body: left };
      // The dialog's secrets section reads the chat's overrides.
      if (url === "/api/v1/chats/c1/secrets") return { status: 200, body: [] };
      if (url.startsWith("/api/v1/chats/c1/permissions/rules/") && method === "DELETE") {
        left = left.filter((r) => !url.endsWith(r.id));
        return { status: 204 };
      }
      if (url === "/api/v1/chats/c1" && method === "PATCH") {
        const patch = body as Partial<Chat>;
        if (patch.custom_instructions === "boom") return { status: 422, body: { error: { code: "instructions_too_long", message: "Too long." } } };
        current = { ...current, ...patch, custom_instructions: patch.custom_instructions === undefined ? current.custom_instructions : patch.custom_instructions || null };
        return { status: 200, body: current };
      }
      throw new Error(`unexpected ${method} ${url}`);
    });
  }

  it("sends only what changed: instructions, then the thinking budget, then back to the default", async () => {
    const sent = serveChat([]);
    wrap(<ChatSettingsDialog chat={chat} open onClose={() => {}} />);
    const box = screen.getByLabelText(/Instructions for this chat/) as HTMLTextAreaElement;
    const thinking = screen.getByLabelText(/Thinking budget/) as HTMLSelectElement;
    expect(thinking.value).toBe("default");
    expect(screen.getByText("Changes apply from the chat’s next turn.")).toBeTruthy();
    fireEvent.change(box, { target: { value: "boom" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Too long.");
    fireEvent.change(box, { target: { value: "Reply in French." } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved.");

    fireEvent.change(thinking, { target: { value: "16384" } });
    expect(screen.queryByText("Saved.")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved.");
    expect(patches(sent).map((r) => [r.url, r.body])).toEqual([
      ["/api/v1/chats/c1", { custom_instructions: "boom" }],
      ["/api/v1/chats/c1", { custom_instructions: "Reply in French." }],
      ["/api/v1/chats/c1", { max_thinking_tokens: 16384 }],
    ]);
  });

  it("offers off, the default and a chat's own budget, and sends null for the default", async () => {
    const sent = serveChat([]);
    wrap(<ChatSettingsDialog chat={{ ...chat, max_thinking_tokens: 2048 }} open onClose={() => {}} />);
    const select = screen.getByLabelText(/Thinking budget/) as HTMLSelectElement;
    expect(Array.from(select.options).map((o) => o.text)).toEqual(["CLI default", "Off", "4k tokens", "16k tokens", "32k tokens", "2,048 tokens"]);
    expect(select.value).toBe("2048");
    fireEvent.change(select, { target: { value: "default" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(patches(sent).map((r) => r.body)).toEqual([{ max_thinking_tokens: null }]));
  });

  it("lists the always-allow rules and removes one, down to the empty state", async () => {
    const sent = serveChat([rule]);
    wrap(<ChatSettingsDialog chat={chat} open onClose={() => {}} />);
    const list = await screen.findByRole("list", { name: "Always allow rules" });
    expect(within(list).getByText("Bash(npm test *)")).toBeTruthy();
    fireEvent.click(within(list).getByRole("button", { name: "Remove Bash(npm test *)" }));
    await screen.findByText("No rules yet: choose Always allow on a request.");
    expect(patches(sent).map((r) => [r.method, r.url])).toEqual([["DELETE", "/api/v1/chats/c1/permissions/rules/r1"]]);
  });
});
