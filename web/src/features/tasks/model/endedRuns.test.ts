import { describe, expect, it } from "vitest";
import type { Task, TaskRun } from "@/shared/api/types";
import { newlyEnded, unfinishedRuns } from "./endedRuns";

const run = (id: string, status: TaskRun["status"]): TaskRun => ({ id, task_id: "t", due_at: "2030-01-01T00:00:00Z", trigger: "scheduled", status });
const task = (id: string, last: TaskRun | null) => ({ id, name: id, last_run: last }) as unknown as Task;

describe("ended task runs", () => {
  it("are the runs seen unfinished that have ended since", () => {
    const before = unfinishedRuns([task("a", run("1", "running")), task("b", run("2", "completed")), task("c", null), task("d", run("4", "claimed"))]);
    expect([...before].sort()).toEqual(["1", "4"]);
    const now = [task("a", run("1", "failed")), task("b", run("2", "completed")), task("c", run("3", "completed")), task("d", run("4", "running"))];
    expect(newlyEnded(before, now).map(({ run }) => [run.id, run.status])).toEqual([["1", "failed"]]);
    // A run that started and ended between two looks was never seen unfinished: no notice.
    expect(newlyEnded(new Set(), now)).toEqual([]);
  });
});
