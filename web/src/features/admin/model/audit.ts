// How the admin screen words an audit event: who, what and about whom, with the emails
// the user list knows in place of ids.
import type { AdminUser, AuditEvent } from "@/shared/api/types";

export const auditKinds = [
  "sign_in",
  "sign_in_failed",
  "sign_in_refused",
  "rate_limited",
  "refresh_token_reused",
  "sign_out",
  "account_created",
  "user_created",
  "user_updated",
  "user_deleted",
  "invite_created",
  "invite_deleted",
  "user_limits_changed",
  "password_changed",
  "password_change_failed",
  "password_reset",
  "settings_changed",
  "secret_created",
  "secret_changed",
  "secret_deleted",
] as const;

const labels: Record<string, string> = {
  sign_in: "signed in",
  sign_in_failed: "failed to sign in",
  sign_in_refused: "was refused sign-in",
  rate_limited: "was rate limited",
  refresh_token_reused: "reused a refresh token (sign-in revoked)",
  sign_out: "signed out",
  account_created: "registered",
  user_created: "created an account",
  user_updated: "changed an account",
  user_deleted: "deleted an account",
  invite_created: "created an invite",
  invite_deleted: "withdrew an invite",
  user_limits_changed: "changed the limits of",
  password_changed: "changed their password",
  password_change_failed: "gave a wrong current password",
  password_reset: "reset the password of",
  settings_changed: "changed the registration mode",
  secret_created: "added a secret",
  secret_changed: "changed a secret",
  secret_deleted: "deleted a secret",
};

export function auditSummary(event: AuditEvent, users: AdminUser[]): string {
  const emailOf = (id: string | null | undefined) => (id ? (users.find((u) => u.id === id)?.email ?? id) : null);
  const who = emailOf(event.actor_id) ?? event.email ?? "someone";
  const what = labels[event.kind] ?? event.kind;
  const target = event.kind.startsWith("user_") || event.kind === "password_reset" ? emailOf(event.target_id) : null;
  const detail =
    event.kind === "rate_limited" && event.detail && typeof event.detail === "object" && "route" in event.detail
      ? ` (${String(event.detail.route)})`
      : event.kind.startsWith("secret_") && event.detail && typeof event.detail === "object" && "name" in event.detail
        ? ` ${String(event.detail.name)}`
        : "";
  return [who, what, target].filter(Boolean).join(" ") + detail;
}
