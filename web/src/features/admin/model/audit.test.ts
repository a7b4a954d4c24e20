import { describe, expect, it } from "vitest";
import type { AdminUser, AuditEvent } from "@/shared/api/types";
import { auditSummary } from "./audit";

const users: AdminUser[] = [
  { id: "a", email: "admin@example.com", username: null, created_at: "", is_admin: true, disabled_at: null, usage: { chats: 0, turns: 0, cost_usd: 0 } },
  { id: "u", email: "user@example.com", username: null, created_at: "", is_admin: false, disabled_at: null, usage: { chats: 0, turns: 0, cost_usd: 0 } },
];

function event(extra: Partial<AuditEvent>): AuditEvent {
  return { id: "e", created_at: "", kind: "sign_in", actor_id: null, target_id: null, email: null, address: null, detail: null, ...extra };
}

describe("auditSummary", () => {
  it("names people by their email", () => {
    expect(auditSummary(event({ kind: "user_updated", actor_id: "a", target_id: "u" }), users)).toBe("admin@example.com changed an account user@example.com");
    expect(auditSummary(event({ kind: "sign_in", actor_id: "u" }), users)).toBe("user@example.com signed in");
  });
  it("uses the email tried when there is no account, and says which limit", () => {
    expect(auditSummary(event({ kind: "sign_in_failed", email: "nobody@example.com" }), users)).toBe("nobody@example.com failed to sign in");
    expect(auditSummary(event({ kind: "rate_limited", detail: { route: "login" } }), users)).toBe("someone was rate limited (login)");
  });
  it("names the secret a change was about, never more", () => {
    expect(auditSummary(event({ kind: "secret_changed", actor_id: "u", target_id: "u", detail: { name: "GITHUB_TOKEN" } }), users)).toBe("user@example.com changed a secret GITHUB_TOKEN");
  });
  it("keeps an id it cannot name, and an unknown kind as it is", () => {
    expect(auditSummary(event({ kind: "user_deleted", actor_id: "a", target_id: "gone" }), users)).toBe("admin@example.com deleted an account gone");
    expect(auditSummary(event({ kind: "something_new", actor_id: "u" }), users)).toBe("user@example.com something_new");
  });
});
