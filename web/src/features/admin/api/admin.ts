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
  ResetPasswordRequest,
  UpdateAccountSettingsRequest,
  UpdateUserRequest,
  UserLimits,
  UserLimitsRequest,
} from "@/shared/api/types";

export const adminKeys = {
  all: ["admin"] as const,
  users: () => [...adminKeys.all, "users"] as const,
  invites: () => [...adminKeys.all, "invites"] as const,
  settings: () => [...adminKeys.all, "settings"] as const,
  audit: (kind: string) => [...adminKeys.all, "audit", kind] as const,
  limits: (userId: string) => [...adminKeys.all, "limits", userId] as const,
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

/** Changes the registration mode; the answer is the rules as the server now has them. */
export function useUpdateAccountSettings() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: UpdateAccountSettingsRequest) => request<AccountSettings>("/api/v1/admin/settings", { method: "PUT", body }),
    onSuccess: (settings) => queryClient.setQueryData(adminKeys.settings(), settings),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}

export function useUserLimits(userId: string) {
  return useQuery({
    queryKey: adminKeys.limits(userId),
    queryFn: () => request<UserLimits>(`/api/v1/admin/users/${userId}/limits`),
    staleTime: 0,
  });
}

export function useSetUserLimits(userId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: UserLimitsRequest) => request<UserLimits>(`/api/v1/admin/users/${userId}/limits`, { method: "PUT", body }),
    onSuccess: (limits) => queryClient.setQueryData(adminKeys.limits(userId), limits),
  });
}

/** Sets a user's password; the audit log on the screen is refetched to show the reset. */
export function useResetPassword(userId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: ResetPasswordRequest) => request<void>(`/api/v1/admin/users/${userId}/password`, { method: "POST", body }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: adminKeys.all }),
  });
}
