// Sign-in and sign-up. On a server without accounts it opens on "create the first account";
// an invite link (`/?invite=TOKEN`) opens sign-up with the invite filled in; when the server's
// registration is closed, sign-up is not offered.
// after an expired session it says so and keeps the email, and the rest of the app (the
// open chat, the composer's draft) is exactly as it was once the user is back.
import { useState, type FormEvent } from "react";
import { ApiError } from "@/shared/api/client";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { useRegister, useSetupStatus, useSignIn } from "../api/auth";
import { useLastEmail, useSessionExpired } from "../model/session";

type Mode = "sign-in" | "register";

function messageOf(error: unknown): string | null {
  if (!error) return null;
  return error instanceof ApiError ? error.message : "Something went wrong. Try again.";
}

export function AuthScreen() {
  const setup = useSetupStatus();
  const expired = useSessionExpired();
  const lastEmail = useLastEmail();
  const [chosen, setChosen] = useState<Mode | null>(null);
  const firstAccount = setup.data?.has_accounts === false;
  const invite = new URLSearchParams(window.location.search).get("invite");
  const registration = firstAccount ? "open" : (setup.data?.registration ?? "open");
  const mode: Mode = chosen ?? (firstAccount || invite ? "register" : "sign-in");

  if (setup.isPending) {
    return (
      <main className="auth">
        <Spinner label="Loading" />
      </main>
    );
  }
  return (
    <main className="auth">
      <div className="auth-card">
        <div className="brand brand-large" aria-hidden>
          <img src="/favicon.svg" alt="" width={32} height={32} /> agentbox
        </div>
        {mode === "sign-in" ? (
          <SignInForm
            expired={expired}
            initialEmail={lastEmail}
            onRegister={registration === "closed" ? null : () => setChosen("register")}
          />
        ) : (
          <RegisterForm
            firstAccount={firstAccount}
            needsInvite={registration === "invite"}
            initialInvite={invite ?? ""}
            onSignIn={() => setChosen("sign-in")}
          />
        )}
      </div>
    </main>
  );
}

function SignInForm({ expired, initialEmail, onRegister }: { expired: boolean; initialEmail: string; onRegister: (() => void) | null }) {
  const signIn = useSignIn();
  const [email, setEmail] = useState(initialEmail);
  const [password, setPassword] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    signIn.mutate({ email: email.trim(), password });
  };
  const error = messageOf(signIn.error);
  return (
    <form onSubmit={submit} className="auth-form" aria-labelledby="auth-title">
      <h1 id="auth-title">Sign in</h1>
      {expired && (
        <p className="notice" role="status">
          Your session has ended. Sign in again to continue where you left off; your draft is kept.
        </p>
      )}
      <label>
        Email
        <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus={!initialEmail} />
      </label>
      <label>
        Password
        <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} autoFocus={!!initialEmail} />
      </label>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <Button type="submit" variant="primary" disabled={signIn.isPending}>
        {signIn.isPending ? "Signing in…" : "Sign in"}
      </Button>
      {onRegister ? (
        <p className="auth-switch">
          No account yet?{" "}
          <button type="button" className="link" onClick={onRegister}>
            Create one
          </button>
        </p>
      ) : (
        <p className="auth-switch muted">No account yet? An administrator of this server can create one for you.</p>
      )}
    </form>
  );
}

function RegisterForm({
  firstAccount,
  needsInvite,
  initialInvite,
  onSignIn,
}: {
  firstAccount: boolean;
  needsInvite: boolean;
  initialInvite: string;
  onSignIn: () => void;
}) {
  const register = useRegister();
  const [invite, setInvite] = useState(initialInvite);
  const [email, setEmail] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    register.mutate({ email: email.trim(), password, username: username.trim() || null, invite: needsInvite ? invite.trim() : null });
  };
  const error = messageOf(register.error);
  return (
    <form onSubmit={submit} className="auth-form" aria-labelledby="auth-title">
      <h1 id="auth-title">{firstAccount ? "Create the first account" : "Create an account"}</h1>
      {firstAccount && <p className="muted">This server has no accounts yet. The account you create now is the first one.</p>}
      <label>
        Email
        <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
      </label>
      <label>
        Name <span className="muted">(optional)</span>
        <input type="text" autoComplete="nickname" maxLength={64} value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      {needsInvite && (
        <label>
          Invite <span className="muted">(from the link an administrator sent you)</span>
          <input type="text" required value={invite} onChange={(e) => setInvite(e.target.value)} />
        </label>
      )}
      <label>
        Password <span className="muted">(at least 8 characters)</span>
        <input type="password" autoComplete="new-password" required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <Button type="submit" variant="primary" disabled={register.isPending}>
        {register.isPending ? "Creating…" : "Create account"}
      </Button>
      {!firstAccount && (
        <p className="auth-switch">
          Have an account?{" "}
          <button type="button" className="link" onClick={onSignIn}>
            Sign in
          </button>
        </p>
      )}
    </form>
  );
}
