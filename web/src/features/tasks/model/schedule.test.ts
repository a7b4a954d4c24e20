import { describe, expect, it } from "vitest";
import { defaultForm, describeSchedule, formOf, scheduleOf } from "./schedule";

describe("the schedule editor's form", () => {
  it("becomes the API's schedule for each kind", () => {
    expect(scheduleOf({ ...defaultForm, kind: "daily", time: "07:30" })).toEqual({ kind: "daily", time: "07:30" });
    expect(scheduleOf({ ...defaultForm, kind: "hourly", minute: "15" })).toEqual({ kind: "hourly", minute: 15 });
    expect(scheduleOf({ ...defaultForm, kind: "weekly", weekday: "0", time: "18:00" })).toEqual({ kind: "weekly", weekday: 0, time: "18:00" });
    expect(scheduleOf({ ...defaultForm, kind: "monthly", day: "31" })).toEqual({ kind: "monthly", day: 31, time: "09:00" });
    expect(scheduleOf({ ...defaultForm, kind: "cron", expression: "  30 2 * * * " })).toEqual({ kind: "cron", expression: "30 2 * * *" });
    const once = scheduleOf({ ...defaultForm, kind: "once", at: "2030-05-01T10:00" });
    expect(once).toEqual({ kind: "once", at: new Date("2030-05-01T10:00").toISOString() });
  });

  it("says what is missing instead of sending it", () => {
    expect(scheduleOf({ ...defaultForm, kind: "hourly", minute: "x" })).toEqual({ error: "The minute is a number from 0 to 59." });
    expect(scheduleOf({ ...defaultForm, kind: "cron", expression: " " })).toEqual({ error: "Write a cron expression." });
    expect(scheduleOf({ ...defaultForm, kind: "once", at: "" })).toEqual({ error: "Choose when it runs." });
  });

  it("reads a task's schedule back unchanged", () => {
    for (const schedule of [
      { kind: "weekly", weekday: 3, time: "06:15" },
      { kind: "monthly", day: 12, time: "23:59" },
      { kind: "cron", expression: "*/5 * * * *" },
      { kind: "hourly", minute: 59 },
      { kind: "weekdays", time: "09:00" },
    ] as const) {
      expect(scheduleOf(formOf(schedule))).toEqual(schedule);
    }
    const at = new Date("2030-05-01T10:00:00Z").toISOString();
    expect(scheduleOf(formOf({ kind: "once", at }))).toEqual({ kind: "once", at });
  });

  it("summarises a schedule in a line", () => {
    expect(describeSchedule({ kind: "weekly", weekday: 1, time: "09:00" })).toBe("Every Monday at 09:00");
    expect(describeSchedule({ kind: "cron", expression: "30 2 * * *" })).toBe("Cron 30 2 * * *");
    expect(describeSchedule({ kind: "weekdays", time: "08:00" })).toBe("Every weekday at 08:00");
  });
});
