// What the admin screen shows for each user and which actions it offers. The server has
// the last word (it refuses to leave no enabled administrator); these rules only keep the
// screen from offering what it would refuse.
import type { AdminUser, Invite } from "@/shared/api/types";

export type UserState = "admin" | "active" | "disabled";

export interface UserRow {
  id: string;
  email: string;
  name: string;
  state: UserState;
  isMe: boolean;
  turns: number;
  chats: number;
  /** The recorded cost, e.g. "$0.42". */
  cost: string;
  canDisable: boolean;
  canEnable: boolean;
  canMakeAdmin: boolean;
  canUnmakeAdmin: boolean;
  canDelete: boolean;
  /** Another user's password (your own is changed in your settings, with the current one). */
  canResetPassword: boolean;
}

export function formatCost(usd: number): string {
  if (usd > 0 && usd < 0.01) return "<$0.01";
  return `$${usd.toFixed(2)}`;
}

export function enabledAdmins(users: AdminUser[]): number {
  return users.filter((user) => user.is_admin && !user.disabled_at).length;
}

export function userRows(users: AdminUser[], meId: string | undefined): UserRow[] {
  const admins = enabledAdmins(users);
  return users.map((user) => {
    const disabled = !!user.disabled_at;
    // The one enabled administrator cannot step down, be disabled or be deleted.
    const lastAdmin = user.is_admin && !disabled && admins <= 1;
    return {
      id: user.id,
      email: user.email,
      name: user.username ?? "",
      state: disabled ? "disabled" : user.is_admin ? "admin" : "active",
      isMe: user.id === meId,
      turns: user.usage.turns,
      chats: user.usage.chats,
      cost: formatCost(user.usage.cost_usd),
      canDisable: !disabled && !lastAdmin && user.id !== meId,
      canEnable: disabled,
      canMakeAdmin: !user.is_admin,
      canUnmakeAdmin: user.is_admin && !lastAdmin,
      canDelete: !lastAdmin && user.id !== meId,
      canResetPassword: user.id !== meId,
    };
  });
}

export type InviteState = "open" | "used" | "expired";

export function inviteState(invite: Invite, now: Date): InviteState {
  if (invite.used_at) return "used";
  return new Date(invite.expires_at).getTime() <= now.getTime() ? "expired" : "open";
}

/** The full sign-up link of a new invite, on this origin. */
export function inviteLink(path: string, origin: string): string {
  return new URL(path, origin).toString();
}
