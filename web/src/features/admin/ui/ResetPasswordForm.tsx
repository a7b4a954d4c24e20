// An administrator sets another user's password on the admin screen: the new password once,
// the server's rule shown plainly when it refuses one, and what happens next when it is set
// (the user signs in with it; open sessions end when their access token expires).
import { useState, type FormEvent } from "react";
import { ApiError } from "@/shared/api/client";
import { Button } from "@/shared/ui/Button";
import { useResetPassword } from "../api/admin";

export function ResetPasswordPanel({ userId, email, onClose }: { userId: string; email: string; onClose: () => void }) {
  const reset = useResetPassword(userId);
  const [password, setPassword] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    reset.mutate({ new_password: password }, { onSuccess: () => setPassword("") });
  };
  const error = reset.error instanceof ApiError ? reset.error.message : reset.error ? "Something went wrong. Try again." : null;
  return (
    <section className="admin-password" aria-labelledby="reset-password-title">
      <h2 id="reset-password-title">Reset the password of {email}</h2>
      <form className="admin-form" onSubmit={submit}>
        <label>
          New password
          <input
            type="password"
            autoComplete="new-password"
            required
            value={password}
            onChange={(e) => {
              setPassword(e.target.value);
              reset.reset();
            }}
          />
        </label>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        {reset.isSuccess && (
          <p className="notice" role="status">
            The password of {email} is set. Tell them the new one: they sign in with it, and the sessions they have open end when their current access token expires.
          </p>
        )}
        <div className="admin-actions">
          <Button type="submit" variant="primary" disabled={reset.isPending || !password}>
            {reset.isPending ? "Setting…" : "Set password"}
          </Button>
          <Button variant="ghost" onClick={onClose}>
            Close
          </Button>
        </div>
      </form>
    </section>
  );
}
