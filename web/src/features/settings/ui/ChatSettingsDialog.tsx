// One chat's own settings: instructions added after the user's, the thinking budget, the
// "always allow" rules made from request cards (removing one makes matching calls ask again)
// and the chat's overrides of the account's secrets.
import { useState, type FormEvent } from "react";
import type { Chat, UpdateChatRequest } from "@/shared/api/types";
import { Button } from "@/shared/ui/Button";
import { Spinner } from "@/shared/ui/Spinner";
import { useUpdateChat } from "@/features/chats/api/chats";
import { useDeletePermissionRule, usePermissionRules, type StoredPermissionRule } from "../api/settings";
import { thinkingFromValue, thinkingOptions, thinkingValue } from "../model/settings";
import { ErrorText } from "@/shared/ui/ErrorText";
import { ChatSecretsSection } from "./ChatSecretsSection";
import { Modal } from "./Modal";

export function ChatSettingsDialog({ chat, open, onClose }: { chat: Chat; open: boolean; onClose: () => void }) {
  return (
    <Modal open={open} title="Chat settings" onClose={onClose}>
      <ChatForm chat={chat} />
      <RulesSection chatId={chat.id} />
      <ChatSecretsSection chatId={chat.id} />
    </Modal>
  );
}

function ChatForm({ chat }: { chat: Chat }) {
  // What the server has, from the chat when the dialog opened and then from each save's answer.
  const [saved, setSaved] = useState(() => ({ text: chat.custom_instructions ?? "", thinking: thinkingValue(chat.max_thinking_tokens) }));
  const [text, setText] = useState(saved.text);
  const [thinking, setThinking] = useState(saved.thinking);
  // Offered: the presets and whatever the chat has now (a budget set through the API).
  const [options] = useState(() => thinkingOptions(chat.max_thinking_tokens));
  const update = useUpdateChat();
  // Only what changed is sent: an absent field stays as it is on the server.
  const body: UpdateChatRequest = {};
  if (text.trim() !== saved.text) body.custom_instructions = text;
  if (thinking !== saved.thinking) body.max_thinking_tokens = thinkingFromValue(thinking);
  const changed = Object.keys(body).length > 0;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    update.mutate({ chatId: chat.id, ...body }, {
        onSuccess: (answer) => {
          const next = { text: answer.custom_instructions ?? "", thinking: thinkingValue(answer.max_thinking_tokens) };
          setSaved(next);
          setText(next.text);
        },
      });
  };
  const edited = () => update.reset();
  return (
    <form className="settings-section" onSubmit={submit}>
      <label className="settings-field">
        <span className="settings-label">Instructions for this chat</span>
        <span className="muted small">Added to the agent’s system prompt after your own instructions, in this chat only.</span>
        <textarea
          data-autofocus
          autoFocus
          rows={5}
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            edited();
          }}
        />
      </label>
      <label className="settings-field">
        <span className="settings-label">Thinking budget</span>
        <select
          value={thinking}
          onChange={(event) => {
            setThinking(event.target.value);
            edited();
          }}
        >
          {options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
        <span className="muted small">How many tokens the model may think before it answers: more can help with hard tasks, at a cost.</span>
      </label>
      <ErrorText error={update.error} />
      <div className="settings-actions">
        <span className="muted small settings-note">Changes apply from the chat’s next turn.</span>
        {update.isSuccess && !changed && (
          <span className="good small" role="status">
            Saved.
          </span>
        )}
        <Button type="submit" variant="primary" disabled={!changed || update.isPending}>
          Save
        </Button>
      </div>
    </form>
  );
}

function ruleText(rule: StoredPermissionRule): string {
  return rule.rule_content ? `${rule.tool_name}(${rule.rule_content})` : `${rule.tool_name} (every call)`;
}

function RulesSection({ chatId }: { chatId: string }) {
  const rules = usePermissionRules(chatId);
  const remove = useDeletePermissionRule(chatId);
  return (
    <section className="settings-section" aria-labelledby="rules-heading">
      <h3 id="rules-heading" className="settings-label">
        Always allowed
      </h3>
      <p className="muted small">Tool calls matching these rules run in this chat without asking. Remove a rule and they ask again.</p>
      {rules.isPending ? (
        <Spinner label="Loading the rules" />
      ) : rules.isError ? (
        <ErrorText error={rules.error} prefix="The rules could not be loaded." />
      ) : rules.data.length === 0 ? (
        <p className="muted small">No rules yet: choose Always allow on a request.</p>
      ) : (
        <ul className="settings-list" aria-label="Always allow rules">
          {rules.data.map((rule) => (
            <li key={rule.id}>
              <code>{ruleText(rule)}</code>
              <Button disabled={remove.isPending} aria-label={`Remove ${ruleText(rule)}`} onClick={() => remove.mutate(rule.id)}>
                Remove
              </Button>
            </li>
          ))}
        </ul>
      )}
      <ErrorText error={remove.error} />
    </section>
  );
}
