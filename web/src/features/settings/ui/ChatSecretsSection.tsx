// A chat's own secrets in its settings: overrides of the account's secrets of the same name
// (or extra ones), for this chat only, shown masked, added or replaced and deleted. Deleting
// one lets the account's secret of that name apply again.
import { useChatSecrets, useDeleteChatSecret, usePutChatSecret } from "../api/secrets";
import { SecretsEditor } from "./SecretsEditor";

export function ChatSecretsSection({ chatId }: { chatId: string }) {
  const secrets = useChatSecrets(chatId);
  const put = usePutChatSecret(chatId);
  const remove = useDeleteChatSecret(chatId);
  return (
    <SecretsEditor title="Secrets for this chat" listLabel="Secrets for this chat" empty="No secrets for this chat: it uses your account’s." secrets={secrets} put={put} remove={remove}>
      <p className="muted small">
        These override your account’s secrets of the same name, in this chat only; delete one and the account’s value applies again. Stored encrypted; values are never shown again. A change applies from the chat’s next turn and to terminals opened afterwards.
      </p>
    </SecretsEditor>
  );
}
