// The schedule editor's form and the API's `Schedule`, both ways, and a one-line summary.
// Due times are never computed here: the server's preview is the one source of them.
import type { Schedule } from "@/shared/api/types";

export type ScheduleKind = Schedule["kind"];

/** What the editor's fields hold; each kind reads only the fields it needs. */
export interface ScheduleForm {
  kind: ScheduleKind;
  /** `HH:MM` */
  time: string;
  minute: string;
  /** 0 (Sunday) to 6 */
  weekday: string;
  day: string;
  expression: string;
  /** `datetime-local` value (the browser's own zone), for `once` */
  at: string;
}

export const kindLabels: Record<ScheduleKind, string> = {
  once: "Once",
  hourly: "Every hour",
  daily: "Every day",
  weekdays: "Every weekday (Mon–Fri)",
  weekly: "Every week",
  monthly: "Every month",
  cron: "Cron expression",
};

export const weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

export const defaultForm: ScheduleForm = { kind: "daily", time: "09:00", minute: "0", weekday: "1", day: "1", expression: "0 9 * * 1-5", at: "" };

function whole(text: string): number | null {
  return /^\d+$/.test(text.trim()) ? Number(text.trim()) : null;
}

/** The form as a `Schedule`, or what is missing; ranges are the server's to check. */
export function scheduleOf(form: ScheduleForm): Schedule | { error: string } {
  switch (form.kind) {
    case "once": {
      const at = form.at ? new Date(form.at) : null;
      if (!at || Number.isNaN(at.getTime())) return { error: "Choose when it runs." };
      return { kind: "once", at: at.toISOString() };
    }
    case "hourly": {
      const minute = whole(form.minute);
      return minute === null ? { error: "The minute is a number from 0 to 59." } : { kind: "hourly", minute };
    }
    case "daily":
    case "weekdays":
      return { kind: form.kind, time: form.time };
    case "weekly": {
      const weekday = whole(form.weekday);
      return weekday === null ? { error: "Choose a day of the week." } : { kind: "weekly", weekday, time: form.time };
    }
    case "monthly": {
      const day = whole(form.day);
      return day === null ? { error: "The day is a number from 1 to 31." } : { kind: "monthly", day, time: form.time };
    }
    case "cron":
      return form.expression.trim() ? { kind: "cron", expression: form.expression.trim() } : { error: "Write a cron expression." };
  }
}

/** A task's schedule back in the editor's fields. */
export function formOf(schedule: Schedule): ScheduleForm {
  const form = { ...defaultForm, kind: schedule.kind };
  switch (schedule.kind) {
    case "once": {
      const at = new Date(schedule.at);
      const local = new Date(at.getTime() - at.getTimezoneOffset() * 60_000);
      return { ...form, at: local.toISOString().slice(0, 16) };
    }
    case "hourly":
      return { ...form, minute: String(schedule.minute) };
    case "daily":
    case "weekdays":
      return { ...form, time: schedule.time };
    case "weekly":
      return { ...form, time: schedule.time, weekday: String(schedule.weekday) };
    case "monthly":
      return { ...form, time: schedule.time, day: String(schedule.day) };
    case "cron":
      return { ...form, expression: schedule.expression };
  }
}

/** "Every day at 09:00", "Cron 30 2 * * *", ... (the zone is shown beside it). */
export function describeSchedule(schedule: Schedule): string {
  switch (schedule.kind) {
    case "once":
      return `Once, ${new Date(schedule.at).toLocaleString()}`;
    case "hourly":
      return `Every hour at minute ${schedule.minute}`;
    case "daily":
      return `Every day at ${schedule.time}`;
    case "weekdays":
      return `Every weekday at ${schedule.time}`;
    case "weekly":
      return `Every ${weekdayNames[schedule.weekday] ?? `day ${schedule.weekday}`} at ${schedule.time}`;
    case "monthly":
      return `Every month on day ${schedule.day} at ${schedule.time}`;
    case "cron":
      return `Cron ${schedule.expression}`;
  }
}

/** The zones the browser knows, for the zone field's suggestions (the server checks). */
export function knownZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  return intl.supportedValuesOf?.("timeZone") ?? ["UTC"];
}

export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
