import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ChatEvent } from "@/shared/api/types";
import { applyEvent, emptyConversation } from "../model/conversation";
import { MessageList } from "./MessageList";

const A = "00000000-0000-0000-0000-00000000000b";
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

/** Answers every API call with `{}` and records what was sent. */
function recordRequests() {
  const sent: { url: string; method: string; body: unknown }[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit) => {
      sent.push({ url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : null });
      return new Response(JSON.stringify({ request_id: "r1", approved: true }), { status: 200, headers: { "content-type": "application/json" } });
    }),
  );
  return sent;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

/** Opens a card as a click on its summary does in a browser. */
function openCard(card: HTMLDetailsElement): void {
  act(() => {
    card.open = true;
    card.dispatchEvent(new Event("toggle"));
  });
}

describe("the conversation view", () => {
  it("folds the thinking of an ended turn away", () => {
    const { container } = render_([
      { seq: 1, message_id: A, created_at: at, type: "assistant_thinking", thinking: "Hmm." },
      { seq: 2, message_id: A, created_at: at, type: "message_completed", status: "completed" },
    ]);
    expect(container.querySelector("details.thinking")?.hasAttribute("open")).toBe(false);
    fireEvent.click(container.querySelector("details.thinking summary") as HTMLElement);
    expect(container.querySelector("details.thinking")?.hasAttribute("open")).toBe(true);
  });

  const long = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join("\n");

  it("shows thinking open while its turn runs, tool cards by kind and long output cut", () => {
    const { container } = render_([
      { seq: 1, message_id: A, created_at: at, type: "assistant_thinking", thinking: "Hmm." },
      { seq: 2, message_id: A, created_at: at, type: "tool_started", tool: { id: "t1", name: "Bash", input: { command: "seq 40" } } },
      { seq: 3, message_id: A, created_at: at, type: "tool_completed", tool: { id: "t1", result: long } },
      { seq: 4, message_id: A, created_at: at, type: "tool_started", tool: { id: "t2", name: "Edit", input: { file_path: "src/a.ts", old_string: "let a = 1;", new_string: "let a = 2;" } } },
    ]);
    // Readable while the turn runs; folded away once it ended (see "thinking of an ended turn").
    const thinking = container.querySelector("details.thinking");
    expect(thinking?.hasAttribute("open")).toBe(true);

    const bash = container.querySelector('[data-tool="Bash"]') as HTMLDetailsElement;
    // One line until opened; then the command and the first lines of its output.
    expect(bash.hasAttribute("open")).toBe(false);
    expect(within(bash).getByText(/^Ran `seq 40` · exit 0/)).toBeTruthy();
    expect(within(bash).queryByText("$ seq 40")).toBeNull();
    openCard(bash);
    expect(within(bash).getByText("$ seq 40")).toBeTruthy();
    expect(within(bash).queryByText(/line 40/)).toBeNull();
    fireEvent.click(within(bash).getByText("Show all 40 lines"));
    expect(within(bash).getByText(/line 40/)).toBeTruthy();

    const edit = container.querySelector('[data-tool="Edit"]') as HTMLDetailsElement;
    expect(within(edit).getByText("Edited a.ts +1 −1")).toBeTruthy();
    expect(within(edit).getByLabelText("Running")).toBeTruthy();
    openCard(edit);
    expect(edit.querySelector(".diff-del")?.textContent).toContain("let a = 1;");
    expect(edit.querySelector(".diff-add")?.textContent).toContain("let a = 2;");
    // The last call is an Edit still running: the footer says so.
    expect(screen.getByText("Editing a.ts…")).toBeTruthy();
  });

  it("says plainly when a turn failed or was stopped, with its cost", () => {
    render_([
      { seq: 1, message_id: A, created_at: at, type: "error", message: "The model API answered 500.", code: "model_error" },
      { seq: 2, message_id: A, created_at: at, type: "usage", input_tokens: 1200, output_tokens: 30, total_cost_usd: 0.004 },
      { seq: 3, message_id: A, created_at: at, type: "message_completed", status: "failed", total_cost_usd: 0.004 },
    ]);
    expect(screen.getByRole("alert").textContent).toContain("The model API answered 500.");
    expect(screen.getByText("Failed")).toBeTruthy();
    expect(screen.getByText("1.2k in · 30 out · $0.0040")).toBeTruthy();
  });

  it("asks inline about a tool call and sends the answer", async () => {
    const sent = recordRequests();
    render_([
      { seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", input: { command: "rm -rf build" }, reason: "ask mode: every change asks first" },
    ]);
    const card = screen.getByRole("region", { name: "Allow Bash?" });
    expect(within(card).getByText("$ rm -rf build")).toBeTruthy();
    expect(within(card).getByText(/ask mode: every change asks first/)).toBeTruthy();
    fireEvent.click(within(card).getByText("Always allow"));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({ url: "/api/v1/chats/c1/permissions/r1", method: "POST", body: { approved: true, remember: true } });
  });

  it("answers a focused request with A, and opens the denial with D", async () => {
    const sent = recordRequests();
    render_([{ seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", input: { command: "git push" } }]);
    const card = screen.getByRole("region", { name: "Allow Bash?" });
    card.focus();
    fireEvent.keyDown(card, { key: "d" });
    const reason = screen.getByLabelText("Reason for denying");
    // Typing the reason is not a shortcut.
    fireEvent.keyDown(reason, { key: "a" });
    expect(sent).toHaveLength(0);
    fireEvent.click(screen.getByRole("button", { name: "Back" }));
    fireEvent.keyDown(card, { key: "a" });
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]?.body).toEqual({ approved: true });
  });

  it("sends a denial with the user's message", async () => {
    const sent = recordRequests();
    render_([{ seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", input: { command: "git push" } }]);
    fireEvent.click(screen.getByText("Deny…"));
    fireEvent.change(screen.getByLabelText("Reason for denying"), { target: { value: "not yet" } });
    fireEvent.click(screen.getByRole("button", { name: "Deny" }));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]?.body).toEqual({ approved: false, message: "not yet" });
  });

  it("answers a question with the chosen option, and insists on an answer", async () => {
    const sent = recordRequests();
    const input = { questions: [{ question: "Which color?", header: "Color", multiSelect: false, options: [{ label: "red", description: "warm" }, { label: "blue", description: "cool" }] }] };
    render_([{ seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "question", tool_name: "AskUserQuestion", input }]);
    fireEvent.click(screen.getByRole("button", { name: "Answer" }));
    expect(screen.getByRole("alert").textContent).toContain("Which color?");
    expect(sent).toHaveLength(0);
    fireEvent.click(screen.getByLabelText(/blue/));
    fireEvent.click(screen.getByRole("button", { name: "Answer" }));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]?.body).toEqual({ approved: true, answers: { "Which color?": "blue" } });
  });

  it("approves a plan with the chosen mode", async () => {
    const sent = recordRequests();
    render_([{ seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "plan", tool_name: "ExitPlanMode", input: {}, plan: "1. Write plan.txt" }]);
    expect(screen.getByText(/Write plan.txt/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Mode after the plan"), { target: { value: "ask" } });
    fireEvent.click(screen.getByText("Approve plan"));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]?.body).toEqual({ approved: true, mode: "ask" });
  });

  it("shows how a request was settled, and no buttons", () => {
    render_([
      { seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", input: { command: "git push" } },
      { seq: 2, message_id: A, created_at: at, type: "permission_resolved", request_id: "r1", approved: false, message: "not yet", resolved_by: "user" },
    ]);
    expect(screen.getByRole("status").textContent).toBe("Denied: not yet");
    expect(screen.queryByText("Approve")).toBeNull();
  });

  it("an unanswered request of a finished turn cannot be answered", () => {
    render_([
      { seq: 1, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", input: { command: "ls" } },
      { seq: 2, message_id: A, created_at: at, type: "message_completed", status: "failed" },
    ]);
    expect(screen.getByText("The turn ended before this was answered.")).toBeTruthy();
    expect(screen.queryByText("Approve")).toBeNull();
  });

  it("a tool call held by a request says it waits for the user, then runs", () => {
    const started: ChatEvent = { seq: 1, message_id: A, created_at: at, type: "tool_started", tool: { id: "t1", name: "Bash", input: { command: "git push" } } };
    const request: ChatEvent = { seq: 2, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", tool_use_id: "t1", input: { command: "git push" } };
    const { container, unmount } = render_([started, request]);
    const card = container.querySelector('[data-tool="Bash"]') as HTMLElement;
    expect(within(card).getByText("waiting for you")).toBeTruthy();
    expect(within(card).queryByLabelText("Running")).toBeNull();
    unmount();
    const approved: ChatEvent = { seq: 3, message_id: A, created_at: at, type: "permission_resolved", request_id: "r1", approved: true };
    const after = render_([started, request, approved]).container.querySelector('[data-tool="Bash"]') as HTMLElement;
    expect(within(after).getByLabelText("Running")).toBeTruthy();
    expect(within(after).queryByText("waiting for you")).toBeNull();
  });
});

describe("the layout of a turn", () => {
  it("nests a sub-agent in its Task, a request in its call's card, and keeps only the latest checklist", () => {
    const { container } = render_([
      { seq: 1, message_id: A, created_at: at, type: "tool_started", tool: { id: "todo1", name: "TodoWrite", input: { todos: [{ content: "One", status: "pending" }] } } },
      { seq: 2, message_id: A, created_at: at, type: "tool_started", tool: { id: "task", name: "Task", input: { description: "Dig", prompt: "dig" } } },
      { seq: 3, message_id: A, created_at: at, parent_tool_use_id: "task", type: "tool_started", tool: { id: "inner", name: "Bash", input: { command: "ls" } } },
      { seq: 4, message_id: A, created_at: at, parent_tool_use_id: "task", type: "tool_completed", tool: { id: "inner", result: "a.txt" } },
      { seq: 5, message_id: A, created_at: at, type: "tool_completed", tool: { id: "task", result: "Found it.\nagentId: x1 (internal ID - do not mention to user.)" } },
      { seq: 6, message_id: A, created_at: at, type: "tool_started", tool: { id: "todo2", name: "TodoWrite", input: { todos: [{ content: "One", status: "completed" }] } } },
      { seq: 7, message_id: A, created_at: at, type: "tool_started", tool: { id: "push", name: "Bash", input: { command: "git push" } } },
      { seq: 8, message_id: A, created_at: at, type: "permission_request", request_id: "r1", kind: "tool", tool_name: "Bash", tool_use_id: "push", input: { command: "git push" } },
    ]);
    const turn = container.querySelector("li.message-assistant") as HTMLElement;
    // One checklist, the latest, open.
    const todos = turn.querySelectorAll('[data-tool="TodoWrite"]');
    expect(todos.length).toBe(1);
    expect(within(todos[0] as HTMLElement).getByText("Plan · 1 of 1 step done")).toBeTruthy();
    expect(within(todos[0] as HTMLElement).getByText(/One/).closest("li")?.className).toContain("todo-completed");
    // The sub-agent's call is inside the Task, and the CLI's internal text is gone.
    const task = turn.querySelector('[data-tool="Task"]') as HTMLDetailsElement;
    expect(turn.querySelectorAll(':scope > [data-tool="Bash"]').length).toBe(1);
    openCard(task);
    expect(within(task).getByText(/^Ran `ls` · exit 0/)).toBeTruthy();
    expect(within(task).getByText("Found it.")).toBeTruthy();
    expect(task.textContent).not.toContain("do not mention");
    // The request is inside its call's card, which is open while it waits: one card.
    const push = turn.querySelector(':scope > [data-tool="Bash"]') as HTMLDetailsElement;
    expect(push.hasAttribute("open")).toBe(true);
    expect(within(push).getByText("Allow Bash?")).toBeTruthy();
    expect(turn.querySelectorAll(":scope > .permission-card").length).toBe(0);
  });
});
