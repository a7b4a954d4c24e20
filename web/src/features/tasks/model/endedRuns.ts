// Which task runs ended since the last look: what the browser notification is about.
import type { Task, TaskRun } from "@/shared/api/types";

const ongoing = new Set<TaskRun["status"]>(["claimed", "running"]);

/** Each task's latest run that has not ended, by run id. */
export function unfinishedRuns(tasks: Task[]): Set<string> {
  return new Set(tasks.flatMap((task) => (task.last_run && ongoing.has(task.last_run.status) ? [task.last_run.id] : [])));
}

/** The runs seen unfinished before (`before`) that have ended now, with their task. */
export function newlyEnded(before: Set<string>, tasks: Task[]): { task: Task; run: TaskRun }[] {
  return tasks.flatMap((task) => {
    const run = task.last_run;
    return run && before.has(run.id) && !ongoing.has(run.status) ? [{ task, run }] : [];
  });
}
