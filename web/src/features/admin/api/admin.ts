// Administration as server state: users with their usage, invites and the account rules.
// Every change refetches the user list, so the screen shows what the server decided (a
// refused "last admin" change leaves the list as it was).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { request } from "@/shared/api/client";
import type {
  AccountSettings,
  AdminUser,
  AuditEvent,
  CreateInviteRequest,
  CreateUserRequest,
  CreatedInvite,
  Invite,
  UpdateUserRequest,
} from "@/shared/api/types";

export const adminKeys = {
  all: ["admin"] as const,
  users: () => [...adminKeys.all, "users"] as const,
  invites: () => [...adminKeys.all, "invites"] as const,
  settings: () => [...adminKeys.all, "settings"] as const,
  audit: (kind: string) => [...adminKeys.all, "audit", kind] as const,
};

/** The newest audit events, of one kind or all (""); refetched when the screen is shown. */
export function useAuditLog(kind: string) {
  const query = new URLSearchParams({ limit: "50", ...(kind ? { kind } : {}) });
  return useQuery({
    queryKey: adminKeys.audit(kind),
    queryFn: () => request<AuditEvent[]>(`/api/v1/admin/audit?${query.toString()}`),
    staleTime: 0,
  });
}

export function useAdminUsers() {
  return useQuery({ queryKey: adminKeys.users(), queryFn: () => request<AdminUser[]>("/api/v1/admin/users") });
}

export function useAccountSettings() {
  return useQuery({ queryKey: adminKeys.settings(), queryFn: () => request<AccountSettings>("/api/v1/admin/settings"), staleTime: 5 * 60_000 });
}

export function useInvites() {
  return useQuery({ queryKey: adminKeys.invites(), queryFn: () => request<Invite[]>("/api/v1/admin/invites") });
}

export function useUpdateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ id, change }: { id: string; change: UpdateUserRequest }) =>
      request<AdminUser>(`/api/v1/admin/users/${id}`, { method: "PATCH", body: change }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}

export function useDeleteUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => request<void>(`/api/v1/admin/users/${id}`, { method: "DELETE" }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}

export function useCreateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateUserRequest) => request<AdminUser>("/api/v1/admin/users", { method: "POST", body }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}

export function useCreateInvite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateInviteRequest) => request<CreatedInvite>("/api/v1/admin/invites", { method: "POST", body }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}

export function useDeleteInvite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => request<void>(`/api/v1/admin/invites/${id}`, { method: "DELETE" }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}
