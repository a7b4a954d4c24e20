// The user's secrets in the account settings: environment variables of their chats'
// sandboxes (the CLI and terminals), shown masked, added or replaced and deleted. The model
// credential names make their turns use their own model account instead of the server's.
import { useState, type FormEvent } from "react";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";
import { Spinner } from "@/shared/ui/Spinner";
import { TrashIcon } from "@/shared/ui/icons";
import { useDeleteSecret, usePutSecret, useSecrets } from "../api/secrets";
import { modelCredentialNames, secretNameProblem } from "../model/secrets";

export function SecretsSection() {
  const secrets = useSecrets();
  const put = usePutSecret();
  const remove = useDeleteSecret();
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
    <section className="settings-section" aria-labelledby="secrets-heading">
      <h3 id="secrets-heading" className="settings-label">
        Secrets
      </h3>
      <p className="muted small">
        Environment variables of your chats’ sandboxes (the agent’s commands and terminals), stored encrypted; values are never shown again. A change applies from each chat’s next turn and to terminals opened afterwards.
      </p>
      <p className="muted small">
        Model credentials: {modelCredentialNames.map((n, i) => (
          <span key={n}>
            {i > 0 && ", "}
            <code>{n}</code>
          </span>
        ))}{" "}
        make your turns use your own model account instead of the server’s.
      </p>
      {secrets.isPending ? (
        <Spinner label="Loading secrets" />
      ) : secrets.isError ? (
        <ErrorText error={secrets.error} prefix="The secrets could not be loaded." />
      ) : secrets.data.length === 0 ? (
        <p className="muted small">No secrets yet.</p>
      ) : (
        <ul className="settings-list" aria-label="Secrets">
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
