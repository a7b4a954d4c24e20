import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Task, TaskRun } from "@/shared/api/types";
import TasksScreen from "./TasksScreen";

type Sent = { url: string; method: string; body: unknown };

function serve(answer: (request: Sent) => { status: number; body?: unknown }) {
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

function wrap() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <TasksScreen />
    </QueryClientProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

const nextRuns = ["2030-01-01T09:00:00Z", "2030-01-02T09:00:00Z", "2030-01-03T09:00:00Z", "2030-01-04T09:00:00Z", "2030-01-05T09:00:00Z"];

const task: Task = {
  id: "11111111-1111-1111-1111-111111111111",
  name: "Morning",
  prompt: "summarise",
  schedule: { kind: "daily", time: "09:00" },
  time_zone: "UTC",
  model: "m",
  permission_mode: "auto",
  permission_timeout_secs: null,
  target: { kind: "new_chat" },
  enabled: true,
  missed_runs: "skip",
  next_run_at: nextRuns[0] ?? null,
  next_runs: nextRuns,
  last_run: null,
  created_at: "2030-01-01T00:00:00Z",
  updated_at: "2030-01-01T00:00:00Z",
};

const run: TaskRun = {
  id: "22222222-2222-2222-2222-222222222222",
  task_id: task.id,
  due_at: "2030-01-01T08:00:00Z",
  trigger: "manual",
  status: "completed",
  started_at: "2030-01-01T08:00:00Z",
  ended_at: "2030-01-01T08:00:05Z",
  cost_usd: 0.01,
  chat_id: "33333333-3333-3333-3333-333333333333",
  message_id: "44444444-4444-4444-4444-444444444444",
};

describe("the tasks screen", () => {
  it("shows the server's next run times for a schedule being written, and its refusal", async () => {
    const sent = serve(({ url, body }) => {
      if (url === "/api/v1/tasks") return { status: 200, body: [] };
      if (url === "/api/v1/chats") return { status: 200, body: [] };
      if (url === "/api/v1/tasks/preview") {
        const schedule = (body as { schedule: { kind: string; expression?: string } }).schedule;
        if (schedule.kind === "cron" && schedule.expression === "nope") {
          return { status: 422, body: { error: { code: "invalid_schedule", message: 'cron expression "nope" has 1 fields' } } };
        }
        return { status: 200, body: { next_runs: nextRuns } };
      }
      return { status: 404, body: { error: { code: "not_found", message: url } } };
    });
    wrap();
    fireEvent.click(await screen.findByRole("button", { name: "New task" }));
    const list = await screen.findByRole("list", { name: "Next runs" });
    expect(within(list).getAllByRole("listitem")).toHaveLength(5);
    fireEvent.change(screen.getByLabelText("Repeats"), { target: { value: "cron" } });
    fireEvent.change(screen.getByLabelText("Cron expression"), { target: { value: "nope" } });
    expect(await screen.findByText('cron expression "nope" has 1 fields')).toBeTruthy();
    const previews = sent.filter((r) => r.url === "/api/v1/tasks/preview").map((r) => r.body);
    expect(previews.at(-1)).toMatchObject({ schedule: { kind: "cron", expression: "nope" } });
  });

  it("lists a task with its next run, runs it now and shows its history with the chat", async () => {
    let runs: TaskRun[] = [];
    const sent = serve(({ url, method }) => {
      if (url === "/api/v1/tasks") return { status: 200, body: [task] };
      if (url === "/api/v1/chats") return { status: 200, body: [] };
      if (url === "/api/v1/tasks/preview") return { status: 200, body: { next_runs: nextRuns } };
      if (url === `/api/v1/tasks/${task.id}/runs`) return { status: 200, body: runs };
      if (url === `/api/v1/tasks/${task.id}/run` && method === "POST") {
        runs = [run];
        return { status: 201, body: run };
      }
      return { status: 404, body: { error: { code: "not_found", message: url } } };
    });
    wrap();
    const table = await screen.findByRole("table", { name: "Tasks" });
    expect(within(table).getByText("Morning")).toBeTruthy();
    expect(within(table).getByText(new Date(nextRuns[0] ?? "").toLocaleString())).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Run Morning now" }));
    const link = await screen.findByRole("link", { name: "Open chat" });
    expect(link.getAttribute("href")).toBe(`/chats/${run.chat_id}`);
    await waitFor(() => expect(sent.some((r) => r.method === "POST" && r.url.endsWith("/run"))).toBe(true));
  });
});
