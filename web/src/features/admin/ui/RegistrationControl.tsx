// Who may register, changed by an administrator while the server runs; the server stores
// it, so it holds after a restart in place of `--registration`.
import { ApiError } from "@/shared/api/client";
import type { AccountSettings, Registration } from "@/shared/api/types";
import { useUpdateAccountSettings } from "../api/admin";

const options: { value: Registration; label: string }[] = [
  { value: "open", label: "Open: anyone can register" },
  { value: "invite", label: "By invite: with a link from an administrator" },
  { value: "closed", label: "Closed: administrators create accounts" },
];

export function RegistrationControl({ settings }: { settings: AccountSettings }) {
  const update = useUpdateAccountSettings();
  const error = update.error instanceof ApiError ? update.error.message : update.error ? "Something went wrong. Try again." : null;
  return (
    <div className="admin-registration">
      <label>
        Registration{" "}
        <select
          value={settings.registration}
          disabled={update.isPending}
          onChange={(e) => update.mutate({ registration: e.target.value as Registration })}
        >
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      </label>{" "}
      <span className="muted">Invites last {settings.invite_ttl_hours} hours.</span>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
