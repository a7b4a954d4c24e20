// The per-user limits form: each limit is the server's default, no limit, or a number the
// administrator types; turned into the request body (`"default"` is sent by leaving the
// field out) and checked before it is sent, and the values shown as people read them.
import type { LimitValues, UserLimits, UserLimitsRequest } from "@/shared/api/types";

export type LimitName = keyof LimitValues & keyof UserLimitsRequest;
export type LimitMode = "default" | "none" | "value";
export interface LimitField {
  mode: LimitMode;
  value: string;
}
export type LimitForm = Record<LimitName, LimitField>;

type Kind = "count" | "usd" | "bytes";

export const limitFields: readonly { name: LimitName; label: string; kind: Kind }[] = [
  { name: "running_turns", label: "Turns running at once", kind: "count" },
  { name: "turns_per_day", label: "Turns per day", kind: "count" },
  { name: "spend_per_day_usd", label: "Spend per day (USD)", kind: "usd" },
  { name: "running_sandboxes", label: "Sandboxes kept running", kind: "count" },
  { name: "workspace_bytes_per_chat", label: "Workspace bytes per chat", kind: "bytes" },
  { name: "workspace_bytes_total", label: "Workspace bytes in total", kind: "bytes" },
];

/** The form as the server has the user's limits. */
export function formFromLimits(limits: UserLimits): LimitForm {
  const form = {} as LimitForm;
  for (const { name } of limitFields) {
    const value = limits.effective[name];
    form[name] = !limits.set_by_admin.includes(name)
      ? { mode: "default", value: "" }
      : value === null || value === undefined
        ? { mode: "none", value: "" }
        : { mode: "value", value: String(value) };
  }
  return form;
}

/** The request body, or what is wrong with the form. */
export function requestFromForm(form: LimitForm): { body: UserLimitsRequest } | { error: string } {
  const body: UserLimitsRequest = {};
  for (const { name, label, kind } of limitFields) {
    const field = form[name];
    if (field.mode === "none") body[name] = null;
    if (field.mode !== "value") continue;
    const text = field.value.trim();
    const number = Number(text);
    if (text === "" || !Number.isFinite(number) || number < 0) return { error: `${label}: enter a number, 0 or more.` };
    if (kind !== "usd" && !Number.isInteger(number)) return { error: `${label}: enter a whole number.` };
    body[name] = number;
  }
  return { body };
}

/** A limit's value as people read it. */
export function limitText(name: LimitName, value: number | null | undefined): string {
  if (value === null || value === undefined) return "no limit";
  const kind = limitFields.find((f) => f.name === name)?.kind ?? "count";
  if (kind === "usd") return `$${value.toFixed(2)}`;
  if (kind === "bytes") return bytesText(value);
  return String(value);
}

function bytesText(bytes: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
