// One list of secrets, whoever's they are (the user's own or a chat's overrides): the masked
// values, a form to add or replace one (the value in a password field, sent once and never
// shown again) and a delete button per secret. The caller brings the queries and the words.
import { useId, useState, type FormEvent, type ReactNode } from "react";
import type { UseMutationResult, UseQueryResult } from "@tanstack/react-query";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";
import { Spinner } from "@/shared/ui/Spinner";
import { TrashIcon } from "@/shared/ui/icons";
import type { SecretInfo } from "../api/secrets";
import { secretNameProblem } from "../model/secrets";

export interface SecretsEditorProps {
  title: string;
  /** The list's accessible name. */
  listLabel: string;
  /** Shown when there is nothing to list. */
  empty: string;
  secrets: UseQueryResult<SecretInfo[]>;
  put: UseMutationResult<SecretInfo, Error, { name: string; value: string }>;
  remove: UseMutationResult<void, Error, string>;
  /** What these secrets are and when a change applies. */
  children: ReactNode;
}

export function SecretsEditor({ title, listLabel, empty, secrets, put, remove, children }: SecretsEditorProps) {
  const headingId = useId();
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const problem = secretNameProblem(name.trim());
  const submit = (event: FormEvent) => {
    event.preventDefault();
    put.mutate(
      { name: name.trim(), value },
      {
        onSuccess: () => {
          setName("");
          setValue("");
        },
      },
    );
  };
  return (
    <section className="settings-section" aria-labelledby={headingId}>
      <h3 id={headingId} className="settings-label">
        {title}
      </h3>
      {children}
      {secrets.isPending ? (
        <Spinner label="Loading secrets" />
      ) : secrets.isError ? (
        <ErrorText error={secrets.error} prefix="The secrets could not be loaded." />
      ) : secrets.data.length === 0 ? (
        <p className="muted small">{empty}</p>
      ) : (
        <ul className="settings-list" aria-label={listLabel}>
          {secrets.data.map((secret) => (
            <li key={secret.name}>
              <code>{secret.name}</code>
              <span className="muted small" aria-label={`Value of ${secret.name}`}>
                {secret.masked}
              </span>
              {secret.kind === "model_credential" && <span className="small">model credential</span>}
              <button type="button" className="icon-btn" aria-label={`Delete ${secret.name}`} title="Delete" disabled={remove.isPending} onClick={() => remove.mutate(secret.name)}>
                <TrashIcon />
              </button>
            </li>
          ))}
        </ul>
      )}
      <ErrorText error={remove.error} />
      <form className="settings-add" onSubmit={submit}>
        <input
          type="text"
          aria-label="Secret name"
          placeholder="GITHUB_TOKEN"
          autoCapitalize="off"
          autoCorrect="off"
          spellCheck={false}
          value={name}
          onChange={(event) => {
            setName(event.target.value);
            put.reset();
          }}
        />
        <input
          type="password"
          aria-label="Secret value"
          placeholder="value"
          autoComplete="off"
          value={value}
          onChange={(event) => {
            setValue(event.target.value);
            put.reset();
          }}
        />
        <Button type="submit" disabled={!name.trim() || !value || problem !== null || put.isPending}>
          Save secret
        </Button>
      </form>
      {problem && <p className="small bad">{problem}</p>}
      <ErrorText error={put.error} />
    </section>
  );
}
