// The user's secrets in the account settings: environment variables of their chats'
// sandboxes (the CLI and terminals), shown masked, added or replaced and deleted. The model
// credential names make their turns use their own model account instead of the server's.
import { useDeleteSecret, usePutSecret, useSecrets } from "../api/secrets";
import { modelCredentialNames } from "../model/secrets";
import { SecretsEditor } from "./SecretsEditor";

export function SecretsSection() {
  const secrets = useSecrets();
  const put = usePutSecret();
  const remove = useDeleteSecret();
  return (
    <SecretsEditor title="Secrets" listLabel="Secrets" empty="No secrets yet." secrets={secrets} put={put} remove={remove}>
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
    </SecretsEditor>
  );
}
