// Scheduled tasks as server state: the list (with each task's next due times), one task's
// history, and the preview of a schedule's next five due times, which the server computes.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type { CreateTaskRequest, Schedule, Task, TaskPreview, TaskRun, UpdateTaskRequest } from "@/shared/api/types";

export const taskKeys = {
  all: ["tasks"] as const,
  list: () => [...taskKeys.all, "list"] as const,
  runs: (id: string) => [...taskKeys.all, "runs", id] as const,
  preview: (schedule: Schedule, zone: string) => [...taskKeys.all, "preview", JSON.stringify(schedule), zone] as const,
};

export function useTasks() {
  return useQuery({ queryKey: taskKeys.list(), queryFn: () => request<Task[]>("/api/v1/tasks"), refetchInterval: 15_000 });
}

/** A task's history; polled while one of its runs has not ended. */
export function useTaskRuns(id: string | null) {
  return useQuery({
    queryKey: taskKeys.runs(id ?? ""),
    queryFn: () => request<TaskRun[]>(`/api/v1/tasks/${id}/runs`),
    enabled: id !== null,
    refetchInterval: (query) => (query.state.data?.some((run) => run.status === "running" || run.status === "claimed") ? 2_000 : 30_000),
  });
}

/** The next due times of a schedule not saved yet; `null` schedule: nothing to ask. */
export function useSchedulePreview(schedule: Schedule | null, zone: string) {
  return useQuery({
    queryKey: schedule ? taskKeys.preview(schedule, zone) : [...taskKeys.all, "preview", "none"],
    queryFn: () => request<TaskPreview>("/api/v1/tasks/preview", { method: "POST", body: { schedule, time_zone: zone } }),
    enabled: schedule !== null,
    placeholderData: keepPreviousData,
    retry: false,
  });
}

export function useCreateTask() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateTaskRequest) => request<Task>("/api/v1/tasks", { method: "POST", body }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: taskKeys.list() }),
  });
}

export function useUpdateTask() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ id, change }: { id: string; change: UpdateTaskRequest }) => request<Task>(`/api/v1/tasks/${id}`, { method: "PATCH", body: change }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: taskKeys.list() }),
  });
}

export function useDeleteTask() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => request<void>(`/api/v1/tasks/${id}`, { method: "DELETE" }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: taskKeys.all }),
  });
}

export function useRunTask() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => request<TaskRun>(`/api/v1/tasks/${id}/run`, { method: "POST" }),
    onSettled: (_run, _error, id) => {
      void queryClient.invalidateQueries({ queryKey: taskKeys.runs(id) });
      void queryClient.invalidateQueries({ queryKey: taskKeys.list() });
      void queryClient.invalidateQueries({ queryKey: ["chats"] });
    },
  });
}
