import { describe, expect, it } from "vitest";
import type { UserLimits } from "@/shared/api/types";
import { formFromLimits, limitText, requestFromForm } from "./limits";

const limits: UserLimits = {
  user_id: "u1",
  effective: { running_turns: null, turns_per_day: 3, spend_per_day_usd: 1.5, running_sandboxes: null, workspace_bytes_per_chat: null, workspace_bytes_total: null },
  defaults: { running_turns: 2, turns_per_day: 10, spend_per_day_usd: 1.5, running_sandboxes: null, workspace_bytes_per_chat: null, workspace_bytes_total: null },
  set_by_admin: ["running_turns", "turns_per_day"],
  usage: { running_turns: 0, turns_today: 1, spend_today_usd: 0.1 },
  day_resets_at: "2026-12-03T00:00:00Z",
};

describe("the limits form", () => {
  it("shows what the administrator set, and the rest as defaults", () => {
    const form = formFromLimits(limits);
    expect(form.running_turns).toEqual({ mode: "none", value: "" });
    expect(form.turns_per_day).toEqual({ mode: "value", value: "3" });
    expect(form.spend_per_day_usd).toEqual({ mode: "default", value: "" });
  });

  it("sends numbers and nulls, and leaves defaults out", () => {
    expect(requestFromForm(formFromLimits(limits))).toEqual({ body: { running_turns: null, turns_per_day: 3 } });
  });

  it("refuses what the server would refuse, before sending it", () => {
    const form = formFromLimits(limits);
    expect(requestFromForm({ ...form, turns_per_day: { mode: "value", value: "2.5" } })).toEqual({ error: "Turns per day: enter a whole number." });
    expect(requestFromForm({ ...form, turns_per_day: { mode: "value", value: "" } })).toEqual({ error: "Turns per day: enter a number, 0 or more." });
    expect(requestFromForm({ ...form, spend_per_day_usd: { mode: "value", value: "-1" } })).toEqual({ error: "Spend per day (USD): enter a number, 0 or more." });
    expect(requestFromForm({ ...form, spend_per_day_usd: { mode: "value", value: "0.25" } })).toEqual({ body: { running_turns: null, turns_per_day: 3, spend_per_day_usd: 0.25 } });
  });

  it("words values as people read them", () => {
    expect(limitText("turns_per_day", null)).toBe("no limit");
    expect(limitText("spend_per_day_usd", 2)).toBe("$2.00");
    expect(limitText("workspace_bytes_total", 1_500_000_000)).toBe("1.5 GB");
    expect(limitText("workspace_bytes_per_chat", 999)).toBe("999 bytes");
    expect(limitText("running_turns", 4)).toBe("4");
  });
});
