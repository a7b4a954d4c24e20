// Failures a user can recover from, as the conversation shows them: advice for model API
// errors, one line for a retried call, an egress refusal that names the host, the demo notice
// once, and Edit of a prompt going back to the checkpoint before it.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ChatEvent } from "@/shared/api/types";
import { applyEvent, emptyConversation } from "../model/conversation";
import { MessageList } from "./MessageList";

const U1 = "00000000-0000-0000-0000-0000000000a1";
const A1 = "00000000-0000-0000-0000-0000000000b1";
const U2 = "00000000-0000-0000-0000-0000000000a2";
const A2 = "00000000-0000-0000-0000-0000000000b2";
const at = "2026-01-01T00:00:00Z";

function render_(events: ChatEvent[]) {
  const conversation = events.reduce(applyEvent, emptyConversation);
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MessageList chatId="c1" messages={conversation.messages} />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
});

const turn = (seq: number, user: string, assistant: string, prompt: string, extra: ChatEvent[] = []): ChatEvent[] => [
  { seq, message_id: user, created_at: at, type: "user_text", text: prompt },
  ...extra,
  { seq: seq + 1 + extra.length, message_id: assistant, created_at: at, type: "message_completed", status: "completed" },
];

describe("recoverable failures", () => {
  it("says what to do about a wrong key, with the API's words folded away", () => {
    render_([
      { seq: 1, message_id: A1, created_at: at, type: "error", code: "model_api_error", message: "API Error: 401 authentication_error · Invalid API key" },
      { seq: 2, message_id: A1, created_at: at, type: "message_completed", status: "failed" },
    ]);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("The model API refused the key");
    expect(alert.textContent).toContain("ANTHROPIC_API_KEY");
    // A failed turn's zeros are not printed.
    expect(screen.queryByText(/0 in/)).toBeNull();
  });

  it("shows a retried call as one line that counts the attempts", () => {
    const { container } = render_([1, 2, 3].map((attempt) => ({ seq: attempt, message_id: A1, created_at: at, type: "system", subtype: "api_retry", attempt, max_retries: 10, error_status: 529 }) as ChatEvent));
    const lines = [...container.querySelectorAll(".notice-block")];
    expect(lines).toHaveLength(1);
    expect(lines[0]?.textContent).toBe("The model API is overloaded; retrying (attempt 3 of 10)…");
  });

  it("names the host the egress proxy refused and links to the setting", () => {
    render_([
      { seq: 1, message_id: A1, created_at: at, type: "tool_started", tool: { id: "t1", name: "Bash", input: { command: "curl -fsS https://pypi.org/simple/" } } },
      { seq: 2, message_id: A1, created_at: at, type: "tool_failed", tool: { id: "t1", error: "Exit code 56\ncurl: (56) CONNECT tunnel failed, response 403" } },
    ]);
    expect(screen.getByText("host not allowed")).toBeTruthy();
    const note = screen.getByRole("note");
    expect(note.textContent).toContain("pypi.org");
    expect(screen.getByRole("button", { name: "Allow it in Settings" })).toBeTruthy();
  });

  it("shows the demo-mode notice once per chat", () => {
    const demo = (seq: number, id: string) => ({ seq, message_id: id, created_at: at, type: "system", subtype: "demo", text: "Demo mode: scripted replies." }) as ChatEvent;
    render_([...turn(1, U1, A1, "one", [demo(2, A1)]), ...turn(4, U2, A2, "two", [demo(5, A2)])]);
    expect(screen.getAllByText("Demo mode: scripted replies.")).toHaveLength(1);
  });
});

describe("editing a prompt", () => {
  it("offers no Edit before the first prompt, copies a prompt, and edits a later one from the checkpoint before it", async () => {
    const sent: { url: string; method: string; body: unknown }[] = [];
    const checkpoints = [
      { id: "k2", message_id: A2, kind: "turn", created_at: "2026-01-01T00:02:00Z", files_added: 0, files_modified: 0, files_deleted: 0, bytes_added: 0, files: 0, bytes: 0 },
      { id: "k1", message_id: A1, kind: "turn", created_at: "2026-01-01T00:01:00Z", files_added: 0, files_modified: 0, files_deleted: 0, bytes_added: 0, files: 0, bytes: 0 },
    ];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit) => {
        sent.push({ url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : null });
        const body = url.endsWith("/checkpoints") ? checkpoints : url.endsWith("/messages") && init.method !== "POST" ? [] : { message_id: "m" };
        return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
      }),
    );
    const writeText = vi.fn(async () => undefined);
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText } });
    render_([...turn(1, U1, A1, "first"), ...turn(3, U2, A2, "second")]);

    const edits = screen.getAllByRole("button", { name: "Edit the prompt" }) as HTMLButtonElement[];
    expect(edits[0]?.disabled).toBe(true);
    expect(edits[1]?.disabled).toBe(false);

    fireEvent.click(screen.getAllByRole("button", { name: "Copy the prompt" })[1] as HTMLElement);
    await waitFor(() => expect(writeText).toHaveBeenCalledWith("second"));
    await screen.findByText("Copied");

    fireEvent.click(edits[1] as HTMLElement);
    fireEvent.change(screen.getByRole("textbox", { name: "Edited prompt" }), { target: { value: "second, better" } });
    fireEvent.click(screen.getByRole("button", { name: "Send edited prompt" }));
    // Nothing happens before the user agrees.
    expect(sent.filter((r) => r.method === "POST")).toHaveLength(0);
    fireEvent.click(await screen.findByRole("button", { name: "Restore and send" }));
    await waitFor(() => expect(sent.filter((r) => r.method === "POST").map((r) => r.url)).toEqual(["/api/v1/chats/c1/checkpoints/k1/restore", "/api/v1/chats/c1/messages"]));
    expect(sent.find((r) => r.method === "POST" && r.url.endsWith("/messages"))?.body).toEqual({ prompt: "second, better" });
  });

  it("restores a turn's own checkpoint from “Restore to here”", async () => {
    const sent: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit) => {
        if (init.method === "POST") sent.push(url);
        const body = url.endsWith("/checkpoints")
          ? [{ id: "k1", message_id: A1, kind: "turn", created_at: at, files_added: 0, files_modified: 0, files_deleted: 0, bytes_added: 0, files: 0, bytes: 0 }]
          : url.endsWith("/messages")
            ? []
            : {};
        return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
      }),
    );
    render_(turn(1, U1, A1, "first"));
    fireEvent.click(screen.getByRole("button", { name: "Restore to here" }));
    fireEvent.click(await screen.findByRole("button", { name: "Restore" }));
    await waitFor(() => expect(sent).toEqual(["/api/v1/chats/c1/checkpoints/k1/restore"]));
  });
});
