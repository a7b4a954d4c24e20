// One user's limits on the admin screen: each limit is the server's default (shown), no
// limit, or a number; saving replaces what was set for the user. Today's usage beside.
import { useState, type FormEvent } from "react";
import { ApiError } from "@/shared/api/client";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import type { UserLimits } from "@/shared/api/types";
import { useSetUserLimits, useUserLimits } from "../api/admin";
import { formFromLimits, limitFields, limitText, requestFromForm, type LimitForm, type LimitMode } from "../model/limits";

export function UserLimitsPanel({ userId, email, onClose }: { userId: string; email: string; onClose: () => void }) {
  const limits = useUserLimits(userId);
  return (
    <section className="admin-limits" aria-labelledby="user-limits-title">
      <h2 id="user-limits-title">Limits of {email}</h2>
      {limits.isPending ? (
        <Spinner label="Loading the limits" />
      ) : limits.error ? (
        <p className="form-error" role="alert">
          {limits.error instanceof ApiError ? limits.error.message : "The limits could not be loaded."}
        </p>
      ) : (
        <LimitsForm limits={limits.data} userId={userId} onClose={onClose} />
      )}
    </section>
  );
}

const modeLabels: Record<LimitMode, string> = { default: "Default", none: "No limit", value: "Limit" };

function LimitsForm({ limits, userId, onClose }: { limits: UserLimits; userId: string; onClose: () => void }) {
  const [form, setForm] = useState<LimitForm>(() => formFromLimits(limits));
  const [invalid, setInvalid] = useState<string | null>(null);
  const save = useSetUserLimits(userId);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const parsed = requestFromForm(form);
    if ("error" in parsed) {
      setInvalid(parsed.error);
      return;
    }
    setInvalid(null);
    save.mutate(parsed.body);
  };
  const error = invalid ?? (save.error instanceof ApiError ? save.error.message : save.error ? "Something went wrong. Try again." : null);
  return (
    <form onSubmit={submit}>
      <p className="muted">
        Today: {limits.usage.turns_today} turns, ${limits.usage.spend_today_usd.toFixed(2)} spent, {limits.usage.running_turns} running.
      </p>
      {limitFields.map(({ name, label }) => {
        const field = form[name];
        return (
          <fieldset key={name} className="admin-limit" aria-label={label}>
            <legend>{label}</legend>
            <select
              aria-label={`${label}: kind`}
              value={field.mode}
              onChange={(e) => setForm({ ...form, [name]: { ...field, mode: e.target.value as LimitMode } })}
            >
              {(Object.keys(modeLabels) as LimitMode[]).map((mode) => (
                <option key={mode} value={mode}>
                  {mode === "default" ? `Default (${limitText(name, limits.defaults[name])})` : modeLabels[mode]}
                </option>
              ))}
            </select>
            {field.mode === "value" && (
              <input
                aria-label={`${label}: value`}
                inputMode="decimal"
                value={field.value}
                onChange={(e) => setForm({ ...form, [name]: { ...field, value: e.target.value } })}
              />
            )}
            <span className="muted small"> in force: {limitText(name, limits.effective[name])}</span>
          </fieldset>
        );
      })}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {save.isSuccess && !save.isPending && (
        <p className="notice" role="status">
          Saved.
        </p>
      )}
      <Button type="submit" variant="primary" disabled={save.isPending}>
        {save.isPending ? "Saving…" : "Save limits"}
      </Button>{" "}
      <Button variant="ghost" onClick={onClose}>
        Close
      </Button>
    </form>
  );
}
