// Scheduled tasks: the list with each task's next run, a form to create or edit one with a
// schedule editor that shows the next five due times (the server's preview), the history of
// a task's runs with links to their chats, and "Run now". Loaded as a chunk of its own.
import { useMemo, useState, type FormEvent } from "react";
import { useChats } from "@/features/chats/api/chats";
import { ApiError } from "@/shared/api/client";
import type { MissedRunPolicy, PermissionMode, Task, TaskRun } from "@/shared/api/types";
import { formatCost } from "@/shared/lib/format";
import { chatPath, navigate } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { useCreateTask, useDeleteTask, useRunTask, useSchedulePreview, useTaskRuns, useTasks, useUpdateTask } from "../api/tasks";
import { browserZone, defaultForm, describeSchedule, formOf, kindLabels, knownZones, scheduleOf, weekdayNames, type ScheduleForm, type ScheduleKind } from "../model/schedule";
import "./tasks.css";

function messageOf(error: unknown): string | null {
  if (!error) return null;
  return error instanceof ApiError ? error.message : "Something went wrong. Try again.";
}

function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** A due time on the task zone's wall clock (the browser's when the zone is not one it knows). */
function inZone(iso: string, zone: string): string {
  try {
    return new Date(iso).toLocaleString(undefined, { timeZone: zone, timeZoneName: "short" });
  } catch {
    return when(iso);
  }
}

export default function TasksScreen() {
  const tasks = useTasks();
  const [editing, setEditing] = useState<string | "new" | null>(null);
  const selected = tasks.data?.find((task) => task.id === editing) ?? null;
  return (
    <section className="chat-view tasks">
      <header className="chat-header">
        <h1 className="chat-heading">Scheduled tasks</h1>
        <Button variant="primary" onClick={() => setEditing("new")}>
          New task
        </Button>
        <Button variant="ghost" onClick={() => navigate("/")}>
          Back to chats
        </Button>
      </header>
      <div className="tasks-body">
        {tasks.isPending ? (
          <Spinner label="Loading the tasks" />
        ) : tasks.error ? (
          <p className="error-text">{messageOf(tasks.error)}</p>
        ) : tasks.data.length === 0 ? (
          <p className="muted">No tasks yet. A task runs a prompt on a schedule, in a new chat each time or in one of your chats.</p>
        ) : (
          <TaskTable tasks={tasks.data} onEdit={setEditing} />
        )}
        {editing === "new" && <TaskEditor key="new" task={null} onDone={(id) => setEditing(id)} />}
        {selected && (
          <>
            <TaskEditor key={selected.id} task={selected} onDone={() => setEditing(selected.id)} />
            <TaskHistory task={selected} />
          </>
        )}
      </div>
    </section>
  );
}

function TaskTable({ tasks, onEdit }: { tasks: Task[]; onEdit: (id: string) => void }) {
  const run = useRunTask();
  return (
    <table className="tasks-table" aria-label="Tasks">
      <thead>
        <tr>
          <th>Name</th>
          <th>Schedule</th>
          <th>Next run</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {tasks.map((task) => (
          <tr key={task.id}>
            <td>{task.name}</td>
            <td>
              {describeSchedule(task.schedule)} <span className="muted">({task.time_zone})</span>
            </td>
            <td>{task.enabled ? when(task.next_run_at) : <span className="muted">Disabled</span>}</td>
            <td className="tasks-actions">
              <Button onClick={() => onEdit(task.id)} aria-label={`Open ${task.name}`}>
                Open
              </Button>
              <Button
                onClick={() => {
                  onEdit(task.id);
                  run.mutate(task.id);
                }}
                disabled={run.isPending}
                aria-label={`Run ${task.name} now`}
              >
                Run now
              </Button>
            </td>
          </tr>
        ))}
      </tbody>
      {run.error && (
        <caption className="error-text">{messageOf(run.error)}</caption>
      )}
    </table>
  );
}

const modes: PermissionMode[] = ["auto", "ask", "plan", "bypassPermissions"];

function TaskEditor({ task, onDone }: { task: Task | null; onDone: (id: string) => void }) {
  const chats = useChats();
  const create = useCreateTask();
  const update = useUpdateTask();
  const remove = useDeleteTask();
  const [name, setName] = useState(task?.name ?? "");
  const [prompt, setPrompt] = useState(task?.prompt ?? "");
  const [form, setForm] = useState<ScheduleForm>(task ? formOf(task.schedule) : defaultForm);
  const [zone, setZone] = useState(task?.time_zone ?? browserZone());
  const [target, setTarget] = useState(task?.target.kind === "chat" ? task.target.chat_id : "");
  const [missed, setMissed] = useState<MissedRunPolicy>(task?.missed_runs ?? "skip");
  const [mode, setMode] = useState<PermissionMode>(task?.permission_mode ?? "auto");
  const [enabled, setEnabled] = useState(task?.enabled ?? true);
  const schedule = scheduleOf(form);
  const valid = "kind" in schedule ? schedule : null;
  const preview = useSchedulePreview(valid, zone);
  const zones = useMemo(knownZones, []);
  const saving = create.isPending || update.isPending;
  const set = (change: Partial<ScheduleForm>) => setForm((current) => ({ ...current, ...change }));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!valid) return;
    const body = {
      name,
      prompt,
      schedule: valid,
      time_zone: zone,
      target: target ? { kind: "chat" as const, chat_id: target } : { kind: "new_chat" as const },
      missed_runs: missed,
      permission_mode: mode,
      enabled,
    };
    if (task) update.mutate({ id: task.id, change: body }, { onSuccess: (saved) => onDone(saved.id) });
    else create.mutate(body, { onSuccess: (saved) => onDone(saved.id) });
  };

  return (
    <form className="tasks-form" onSubmit={submit} aria-label={task ? `Edit ${task.name}` : "New task"}>
      <h2>{task ? task.name : "New task"}</h2>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
      </label>
      <label>
        Prompt
        <textarea value={prompt} onChange={(e) => setPrompt(e.target.value)} rows={3} required />
      </label>
      <fieldset className="tasks-schedule">
        <legend>Schedule</legend>
        <label>
          Repeats
          <select aria-label="Repeats" value={form.kind} onChange={(e) => set({ kind: e.target.value as ScheduleKind })}>
            {(Object.keys(kindLabels) as ScheduleKind[]).map((kind) => (
              <option key={kind} value={kind}>
                {kindLabels[kind]}
              </option>
            ))}
          </select>
        </label>
        {form.kind === "once" && (
          <label>
            At
            <input type="datetime-local" value={form.at} onChange={(e) => set({ at: e.target.value })} />
          </label>
        )}
        {form.kind === "hourly" && (
          <label>
            Minute
            <input type="number" min={0} max={59} value={form.minute} onChange={(e) => set({ minute: e.target.value })} />
          </label>
        )}
        {form.kind === "weekly" && (
          <label>
            Day
            <select value={form.weekday} onChange={(e) => set({ weekday: e.target.value })}>
              {weekdayNames.map((day, n) => (
                <option key={day} value={n}>
                  {day}
                </option>
              ))}
            </select>
          </label>
        )}
        {form.kind === "monthly" && (
          <label>
            Day of the month
            <input type="number" min={1} max={31} value={form.day} onChange={(e) => set({ day: e.target.value })} />
          </label>
        )}
        {["daily", "weekdays", "weekly", "monthly"].includes(form.kind) && (
          <label>
            Time
            <input type="time" aria-label="Time" value={form.time} onChange={(e) => set({ time: e.target.value })} />
          </label>
        )}
        {form.kind === "cron" && (
          <label>
            Cron expression
            <input aria-label="Cron expression" value={form.expression} onChange={(e) => set({ expression: e.target.value })} placeholder="30 2 * * *" />
          </label>
        )}
        {form.kind !== "once" && (
          <label>
            Time zone
            <input aria-label="Time zone" value={zone} onChange={(e) => setZone(e.target.value)} list="tasks-zones" />
            <datalist id="tasks-zones">
              {zones.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
          </label>
        )}
        <div className="tasks-preview" aria-live="polite">
          <strong>Next runs</strong>
          {"error" in schedule ? (
            <p className="muted">{schedule.error}</p>
          ) : preview.error ? (
            <p className="error-text">{messageOf(preview.error)}</p>
          ) : preview.data ? (
            <ol aria-label="Next runs">
              {preview.data.next_runs.map((at) => (
                <li key={at}>{inZone(at, form.kind === "once" ? browserZone() : zone)}</li>
              ))}
            </ol>
          ) : (
            <Spinner label="Computing" />
          )}
        </div>
      </fieldset>
      <label>
        Runs in
        <select aria-label="Runs in" value={target} onChange={(e) => setTarget(e.target.value)}>
          <option value="">A new chat each time</option>
          {chats.data?.map((chat) => (
            <option key={chat.id} value={chat.id}>
              {chat.title}
            </option>
          ))}
        </select>
      </label>
      <label>
        Permission mode
        <select aria-label="Permission mode" value={mode} onChange={(e) => setMode(e.target.value as PermissionMode)}>
          {modes.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <label>
        When the server was down at a due time
        <select aria-label="Missed runs" value={missed} onChange={(e) => setMissed(e.target.value as MissedRunPolicy)}>
          <option value="skip">Skip the missed runs</option>
          <option value="run_once">Run once when it is back</option>
        </select>
      </label>
      <label className="tasks-check">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
      </label>
      <p className="muted">A request for your answer during a run waits for the task's permission timeout, then is denied; the chat shows as waiting meanwhile.</p>
      {(create.error || update.error || remove.error) && <p className="error-text">{messageOf(create.error ?? update.error ?? remove.error)}</p>}
      <div className="tasks-actions">
        <Button variant="primary" type="submit" disabled={saving || !valid}>
          {task ? "Save" : "Create task"}
        </Button>
        {task && (
          <Button variant="danger" onClick={() => remove.mutate(task.id)} disabled={remove.isPending}>
            Delete
          </Button>
        )}
      </div>
    </form>
  );
}

const statusLabels: Record<TaskRun["status"], string> = {
  claimed: "Starting",
  running: "Running",
  completed: "Completed",
  failed: "Failed",
  interrupted: "Interrupted",
  skipped: "Skipped",
};

function TaskHistory({ task }: { task: Task }) {
  const runs = useTaskRuns(task.id);
  return (
    <section className="tasks-history" aria-label="History">
      <h2>History</h2>
      {runs.isPending ? (
        <Spinner label="Loading the history" />
      ) : runs.error ? (
        <p className="error-text">{messageOf(runs.error)}</p>
      ) : runs.data.length === 0 ? (
        <p className="muted">No runs yet.</p>
      ) : (
        <table className="tasks-table">
          <thead>
            <tr>
              <th>Due</th>
              <th>Status</th>
              <th>Started</th>
              <th>Ended</th>
              <th>Cost</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {runs.data.map((run) => (
              <tr key={run.id} data-status={run.status}>
                <td>
                  {when(run.due_at)} {run.trigger !== "scheduled" && <span className="muted">({run.trigger})</span>}
                </td>
                <td title={run.error ?? undefined}>
                  {statusLabels[run.status]}
                  {run.error && <div className="muted">{run.error}</div>}
                </td>
                <td>{when(run.started_at)}</td>
                <td>{when(run.ended_at)}</td>
                <td>{formatCost(run.cost_usd) ?? "—"}</td>
                <td>
                  {run.chat_id && (
                    <a
                      href={chatPath(run.chat_id)}
                      onClick={(event) => {
                        event.preventDefault();
                        navigate(chatPath(run.chat_id ?? ""));
                      }}
                    >
                      Open chat
                    </a>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
