// A browser notification when a scheduled task's run ends (only after the user turned
// notifications on, as for chats that wait). The task list is polled; a run counts once it
// was seen unfinished, so a reload never notifies about old runs.
import { useEffect, useRef } from "react";
import { chatPath, navigate } from "@/shared/lib/router";
import { useTasks } from "../api/tasks";
import { newlyEnded, unfinishedRuns } from "./endedRuns";

export function useTaskNotifications(): void {
  const tasks = useTasks();
  const seen = useRef<Set<string> | null>(null);
  useEffect(() => {
    if (!tasks.data) return;
    const ended = seen.current ? newlyEnded(seen.current, tasks.data) : [];
    seen.current = unfinishedRuns(tasks.data);
    if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
    for (const { task, run } of ended) {
      const notification = new Notification(`Task “${task.name}” ${run.status}`, { body: run.error ?? "Its run has ended.", tag: `agentbox-run-${run.id}` });
      notification.onclick = () => {
        window.focus();
        if (run.chat_id) navigate(chatPath(run.chat_id));
        notification.close();
      };
    }
  }, [tasks.data]);
}
