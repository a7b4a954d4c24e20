// The user's own settings: the model and mode new chats start with, instructions added to the
// agent's system prompt in every chat, and the hosts their sandboxes may reach besides the
// server's allow-list. Each part saves on its
// own, so an error in one never blocks or loses the other; a password change; and the
// secrets, in a section of their own (SecretsSection).
import { useState, type FormEvent } from "react";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { TrashIcon } from "@/shared/ui/icons";
import { KNOWN_MODELS, modelName, MODES } from "@/features/composer/model/options";
import type { PermissionMode } from "@/shared/api/types";
import { useUpdateUserSettings, useUserSettings, type UserSettings } from "../api/settings";
import { withHost } from "../model/settings";
import { ErrorText } from "@/shared/ui/ErrorText";
import { ChangePasswordSection } from "./ChangePasswordSection";
import { Modal } from "./Modal";
import { SecretsSection } from "./SecretsSection";

export function AccountSettingsDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Modal open={open} title="Settings" onClose={onClose}>
      <AccountSettings />
    </Modal>
  );
}

function AccountSettings() {
  const settings = useUserSettings();
  if (settings.isPending) return <Spinner label="Loading settings" />;
  if (settings.isError) {
    return (
      <div>
        <ErrorText error={settings.error} prefix="The settings could not be loaded." />
        <Button onClick={() => void settings.refetch()}>Try again</Button>
      </div>
    );
  }
  return (
    <>
      <NewChatDefaultsSection settings={settings.data} />
      <InstructionsSection saved={settings.data.custom_instructions ?? ""} />
      <HostsSection hosts={settings.data.sandbox_allowed_hosts ?? []} />
      <ChangePasswordSection />
      <SecretsSection />
    </>
  );
}

/** Saved on each change: two pickers, nothing to lose by saving at once. */
function NewChatDefaultsSection({ settings }: { settings: UserSettings }) {
  const update = useUpdateUserSettings();
  const model = settings.default_model ?? "";
  const models = model && !KNOWN_MODELS.includes(model) ? [model, ...KNOWN_MODELS] : KNOWN_MODELS;
  return (
    <section className="settings-section" aria-labelledby="defaults-heading">
      <h3 id="defaults-heading" className="settings-label">
        New chats
      </h3>
      <p className="muted small">The model and mode a new chat starts with; each chat can change its own in the composer.</p>
      <div className="settings-row">
        <label className="settings-field">
          <span className="small">Model</span>
          <select aria-label="Default model" value={model} disabled={update.isPending} onChange={(e) => update.mutate({ default_model: e.target.value })}>
            <option value="">Server default ({modelName(settings.server_default_model)})</option>
            {models.map((id) => (
              <option key={id} value={id}>
                {modelName(id)}
              </option>
            ))}
          </select>
        </label>
        <label className="settings-field">
          <span className="small">Mode</span>
          <select
            aria-label="Default mode"
            value={settings.default_permission_mode ?? "auto"}
            disabled={update.isPending}
            onChange={(e) => update.mutate({ default_permission_mode: e.target.value as PermissionMode })}
          >
            {MODES.map((mode) => (
              <option key={mode.value} value={mode.value} title={mode.hint}>
                {mode.label} — {mode.hint}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorText error={update.error} />
    </section>
  );
}

function InstructionsSection({ saved }: { saved: string }) {
  const [text, setText] = useState(saved);
  const update = useUpdateUserSettings();
  const changed = text.trim() !== saved;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    update.mutate({ custom_instructions: text }, { onSuccess: (settings) => setText(settings.custom_instructions ?? "") });
  };
  return (
    <form className="settings-section" onSubmit={submit}>
      <label className="settings-field">
        <span className="settings-label">Custom instructions</span>
        <span className="muted small">Added to the agent’s system prompt in all your chats, before each chat’s own instructions. They apply from each chat’s next turn.</span>
        <textarea
          data-autofocus
          autoFocus
          rows={6}
          value={text}
          placeholder="e.g. Answer briefly. Prefer TypeScript."
          onChange={(event) => {
            setText(event.target.value);
            update.reset();
          }}
        />
      </label>
      <ErrorText error={update.error} />
      <div className="settings-actions">
        {update.isSuccess && !changed && (
          <span className="good small" role="status">
            Saved.
          </span>
        )}
        <Button type="submit" variant="primary" disabled={!changed || update.isPending}>
          Save instructions
        </Button>
      </div>
    </form>
  );
}

function HostsSection({ hosts }: { hosts: string[] }) {
  const [draft, setDraft] = useState("");
  const update = useUpdateUserSettings();
  const add = (event: FormEvent) => {
    event.preventDefault();
    const next = withHost(hosts, draft);
    if (next.length === hosts.length) {
      setDraft("");
      return;
    }
    update.mutate({ sandbox_allowed_hosts: next }, { onSuccess: () => setDraft("") });
  };
  const remove = (host: string) => update.mutate({ sandbox_allowed_hosts: hosts.filter((h) => h !== host) });
  return (
    <section className="settings-section" aria-labelledby="hosts-heading">
      <h3 id="hosts-heading" className="settings-label">
        Sandbox allowed hosts
      </h3>
      <p className="muted small">Your chats’ sandboxes may reach these hosts through the egress proxy, besides the ones the server allows (public addresses only, unless the server’s operator allows local ones). Write <code>host</code>, <code>host:port</code> or <code>*.domain</code>.</p>
      {hosts.length === 0 ? (
        <p className="muted small">No hosts of your own.</p>
      ) : (
        <ul className="settings-list" aria-label="Allowed hosts">
          {hosts.map((host) => (
            <li key={host}>
              <code>{host}</code>
              <button type="button" className="icon-btn" aria-label={`Remove ${host}`} title="Remove" disabled={update.isPending} onClick={() => remove(host)}>
                <TrashIcon />
              </button>
            </li>
          ))}
        </ul>
      )}
      <form className="settings-add" onSubmit={add}>
        <input
          type="text"
          aria-label="Host to allow"
          placeholder="api.example.com"
          autoCapitalize="off"
          autoCorrect="off"
          spellCheck={false}
          value={draft}
          onChange={(event) => {
            setDraft(event.target.value);
            update.reset();
          }}
        />
        <Button type="submit" disabled={!draft.trim() || update.isPending}>
          Add
        </Button>
      </form>
      <ErrorText error={update.error} />
    </section>
  );
}
