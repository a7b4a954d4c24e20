// Changing your password in the settings: the current one, the new one twice. The server
// ends every other sign-in of yours; this one goes on with the tokens it answers with.
import { useState, type FormEvent } from "react";
import { useChangePassword } from "@/features/auth/api/auth";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";

export function ChangePasswordSection() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const change = useChangePassword();
  const mismatch = again !== "" && next !== again;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (mismatch) return;
    change.mutate(
      { current_password: current, new_password: next },
      {
        onSuccess: () => {
          setCurrent("");
          setNext("");
          setAgain("");
        },
      },
    );
  };
  const edited = (set: (value: string) => void) => (event: { target: { value: string } }) => {
    set(event.target.value);
    change.reset();
  };
  return (
    <form className="settings-section" onSubmit={submit} aria-labelledby="password-heading">
      <h3 id="password-heading" className="settings-label">
        Change password
      </h3>
      <p className="muted small">Signs you out everywhere else.</p>
      <label className="settings-field">
        <span>Current password</span>
        <input type="password" autoComplete="current-password" required value={current} onChange={edited(setCurrent)} />
      </label>
      <label className="settings-field">
        <span>New password</span>
        <input type="password" autoComplete="new-password" required value={next} onChange={edited(setNext)} />
      </label>
      <label className="settings-field">
        <span>New password again</span>
        <input type="password" autoComplete="new-password" required value={again} onChange={edited(setAgain)} />
      </label>
      {mismatch && (
        <p className="form-error" role="alert">
          The new passwords differ.
        </p>
      )}
      <ErrorText error={change.error} />
      <div className="settings-actions">
        {change.isSuccess && (
          <span className="good small" role="status">
            Password changed.
          </span>
        )}
        <Button type="submit" variant="primary" disabled={change.isPending || mismatch || !current || !next}>
          Change password
        </Button>
      </div>
    </form>
  );
}
