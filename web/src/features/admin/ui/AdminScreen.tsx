// The administrators' screen: every user with their usage and the actions on them
// (disable, enable, make or unmake admin, delete, reset the password), a form to create an account, and
// invites when registration is by invite, the registration mode, one user's limits and the
// audit log. Loaded as a chunk of its own.
import { useState, type FormEvent } from "react";
import { useMe } from "@/features/auth/api/auth";
import { ApiError } from "@/shared/api/client";
import { navigate } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import {
  useAccountSettings,
  useAdminUsers,
  useAuditLog,
  useCreateInvite,
  useCreateUser,
  useDeleteInvite,
  useDeleteUser,
  useInvites,
  useUpdateUser,
} from "../api/admin";
import { auditKinds, auditSummary } from "../model/audit";
import { inviteLink, inviteState, userRows, type UserRow } from "../model/users";
import { RegistrationControl } from "./RegistrationControl";
import { ResetPasswordPanel } from "./ResetPasswordForm";
import { UserLimitsPanel } from "./UserLimitsForm";
import type { AdminUser } from "@/shared/api/types";
import "./admin.css";

function messageOf(error: unknown): string | null {
  if (!error) return null;
  return error instanceof ApiError ? error.message : "Something went wrong. Try again.";
}

const stateLabels = { admin: "Administrator", active: "Active", disabled: "Disabled" } as const;

export default function AdminScreen() {
  const me = useMe(true);
  const users = useAdminUsers();
  const settings = useAccountSettings();
  const [limitsOf, setLimitsOf] = useState<UserRow | null>(null);
  const [passwordOf, setPasswordOf] = useState<UserRow | null>(null);
  if (me.data && !me.data.is_admin) {
    return (
      <section className="chat-view">
        <p className="empty-state">Only administrators can see this page.</p>
      </section>
    );
  }
  return (
    <section className="chat-view admin">
      <header className="chat-header">
        <h1 className="chat-heading">Administration</h1>
        <Button variant="ghost" onClick={() => navigate("/")}>
          Back to chats
        </Button>
      </header>
      <div className="admin-body">
        {settings.data && <RegistrationControl settings={settings.data} />}
        <h2>Users</h2>
        {users.isPending ? (
          <Spinner label="Loading the users" />
        ) : users.error ? (
          <p className="form-error" role="alert">
            {messageOf(users.error)}
          </p>
        ) : (
          <UsersTable rows={userRows(users.data ?? [], me.data?.id)} onLimits={setLimitsOf} onResetPassword={setPasswordOf} />
        )}
        {limitsOf && <UserLimitsPanel key={limitsOf.id} userId={limitsOf.id} email={limitsOf.email} onClose={() => setLimitsOf(null)} />}
        {passwordOf && <ResetPasswordPanel key={passwordOf.id} userId={passwordOf.id} email={passwordOf.email} onClose={() => setPasswordOf(null)} />}
        <CreateUserForm />
        {settings.data?.registration === "invite" && <Invites />}
        <AuditLog users={users.data ?? []} />
      </div>
    </section>
  );
}

function UsersTable({ rows, onLimits, onResetPassword }: { rows: UserRow[]; onLimits: (row: UserRow) => void; onResetPassword: (row: UserRow) => void }) {
  const update = useUpdateUser();
  const remove = useDeleteUser();
  const error = messageOf(update.error ?? remove.error);
  const busy = update.isPending || remove.isPending;
  return (
    <>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <table className="admin-table">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">State</th>
            <th scope="col">Chats</th>
            <th scope="col">Turns</th>
            <th scope="col">Cost</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.id} aria-label={row.email}>
              <td>
                {row.email}
                {row.name && <span className="muted"> ({row.name})</span>}
                {row.isMe && <span className="muted"> — you</span>}
              </td>
              <td>{stateLabels[row.state]}</td>
              <td>{row.chats}</td>
              <td>{row.turns}</td>
              <td>{row.cost}</td>
              <td>
                <div className="admin-actions">
                <Button onClick={() => onLimits(row)}>Limits</Button>
                {row.canResetPassword && <Button onClick={() => onResetPassword(row)}>Reset password</Button>}
                {row.canDisable && (
                  <Button disabled={busy} onClick={() => update.mutate({ id: row.id, change: { disabled: true } })}>
                    Disable
                  </Button>
                )}
                {row.canEnable && (
                  <Button disabled={busy} onClick={() => update.mutate({ id: row.id, change: { disabled: false } })}>
                    Enable
                  </Button>
                )}
                {row.canMakeAdmin && (
                  <Button disabled={busy} onClick={() => update.mutate({ id: row.id, change: { is_admin: true } })}>
                    Make admin
                  </Button>
                )}
                {row.canUnmakeAdmin && (
                  <Button disabled={busy} onClick={() => update.mutate({ id: row.id, change: { is_admin: false } })}>
                    Remove admin
                  </Button>
                )}
                {row.canDelete && (
                  <Button
                    variant="danger"
                    disabled={busy}
                    onClick={() => {
                      if (window.confirm(`Delete ${row.email} with all their chats? This cannot be undone.`)) remove.mutate(row.id);
                    }}
                  >
                    Delete
                  </Button>
                )}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function CreateUserForm() {
  const create = useCreateUser();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(
      { email: email.trim(), password, is_admin: isAdmin },
      {
        onSuccess: () => {
          setEmail("");
          setPassword("");
          setIsAdmin(false);
        },
      },
    );
  };
  const error = messageOf(create.error);
  return (
    <form className="admin-form" onSubmit={submit} aria-labelledby="create-user-title">
      <h2 id="create-user-title">Create an account</h2>
      <label>
        Email
        <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label>
        Password
        <input type="password" autoComplete="new-password" required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      <label className="admin-check">
        <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} /> Administrator
      </label>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <Button type="submit" variant="primary" disabled={create.isPending}>
        {create.isPending ? "Creating…" : "Create account"}
      </Button>
    </form>
  );
}

function Invites() {
  const invites = useInvites();
  const create = useCreateInvite();
  const remove = useDeleteInvite();
  const created = create.data;
  const now = new Date();
  return (
    <div className="admin-invites">
      <h2>Invites</h2>
      <Button onClick={() => create.mutate({})} disabled={create.isPending}>
        New invite link
      </Button>
      {created && (
        <p className="notice" role="status">
          Send this link to the person you invite; it works once and is shown only now:{" "}
          <code className="admin-link">{inviteLink(created.path, window.location.origin)}</code>
        </p>
      )}
      {messageOf(create.error ?? remove.error) && (
        <p className="form-error" role="alert">
          {messageOf(create.error ?? remove.error)}
        </p>
      )}
      <ul className="admin-invite-list">
        {(invites.data ?? []).map((invite) => (
          <li key={invite.id}>
            {inviteState(invite, now)} · expires {new Date(invite.expires_at).toLocaleString()}{" "}
            <Button variant="ghost" onClick={() => remove.mutate(invite.id)} disabled={remove.isPending}>
              Withdraw
            </Button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function AuditLog({ users }: { users: AdminUser[] }) {
  const [kind, setKind] = useState("");
  const log = useAuditLog(kind);
  return (
    <div className="admin-audit">
      <h2>Audit log</h2>
      <label>
        Show{" "}
        <select value={kind} onChange={(e) => setKind(e.target.value)}>
          <option value="">every event</option>
          {auditKinds.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </label>
      {log.error ? (
        <p className="form-error" role="alert">
          {messageOf(log.error)}
        </p>
      ) : (
        <ul className="admin-audit-list" aria-label="Audit log, newest first">
          {(log.data ?? []).map((event) => (
            <li key={event.id}>
              <time dateTime={event.created_at}>{new Date(event.created_at).toLocaleString()}</time> {auditSummary(event, users)}
              {event.address && <span className="muted"> from {event.address}</span>}
            </li>
          ))}
          {log.data?.length === 0 && <li className="muted">Nothing recorded.</li>}
        </ul>
      )}
    </div>
  );
}
