import { describe, expect, it } from "vitest";
import type { AdminUser, Invite } from "@/shared/api/types";
import { formatCost, inviteLink, inviteState, userRows } from "./users";

function user(id: string, extra: Partial<AdminUser> = {}): AdminUser {
  return {
    id,
    email: `${id}@example.com`,
    username: null,
    created_at: "2026-12-01T00:00:00Z",
    is_admin: false,
    disabled_at: null,
    usage: { chats: 0, turns: 0, cost_usd: 0 },
    ...extra,
  };
}

describe("userRows", () => {
  it("never offers to leave no enabled administrator", () => {
    const rows = userRows([user("a", { is_admin: true }), user("b")], "a");
    expect(rows[0]).toMatchObject({ state: "admin", isMe: true, canUnmakeAdmin: false, canDisable: false, canDelete: false, canResetPassword: false });
    expect(rows[1]).toMatchObject({ state: "active", canDisable: true, canMakeAdmin: true, canDelete: true, canEnable: false, canResetPassword: true });
  });

  it("lets one of two administrators step down, but not disable or delete themselves", () => {
    const rows = userRows([user("a", { is_admin: true }), user("b", { is_admin: true })], "a");
    expect(rows[0]).toMatchObject({ canUnmakeAdmin: true, canDisable: false, canDelete: false });
    expect(rows[1]).toMatchObject({ canUnmakeAdmin: true, canDisable: true, canDelete: true });
  });

  it("does not count a disabled administrator as the one that remains", () => {
    const rows = userRows([user("a", { is_admin: true }), user("b", { is_admin: true, disabled_at: "2026-12-01T01:00:00Z" })], "b");
    expect(rows[0]).toMatchObject({ canUnmakeAdmin: false, canDisable: false });
    expect(rows[1]).toMatchObject({ state: "disabled", canEnable: true, canDisable: false, canUnmakeAdmin: true });
  });

  it("shows usage with the recorded cost", () => {
    const [row] = userRows([user("a", { usage: { chats: 2, turns: 7, cost_usd: 1.234 } })], undefined);
    expect(row).toMatchObject({ chats: 2, turns: 7, cost: "$1.23" });
    expect(formatCost(0)).toBe("$0.00");
    expect(formatCost(0.004)).toBe("<$0.01");
  });
});

describe("invites", () => {
  const invite: Invite = {
    id: "i",
    created_by: null,
    created_at: "2026-12-01T00:00:00Z",
    expires_at: "2026-12-02T00:00:00Z",
    used_at: null,
    used_by: null,
  };
  it("are open, used or expired", () => {
    expect(inviteState(invite, new Date("2026-12-01T12:00:00Z"))).toBe("open");
    expect(inviteState(invite, new Date("2026-12-02T00:00:00Z"))).toBe("expired");
    expect(inviteState({ ...invite, used_at: "2026-12-01T01:00:00Z" }, new Date("2026-12-03T00:00:00Z"))).toBe("used");
  });
  it("link to this server's sign-up", () => {
    expect(inviteLink("/?invite=abc", "https://agentbox.example:8443")).toBe("https://agentbox.example:8443/?invite=abc");
  });
});
