// The prompt box: Enter sends, Shift+Enter starts a new line; the model and mode pickers
// change the chat's settings for its next turn; while a turn runs, Stop interrupts it and a
// prompt sent meanwhile is queued to run after it.
import { useEffect, useLayoutEffect, type FormEvent } from "react";
import type { Chat } from "@/shared/api/types";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";
import { useUpdateChat } from "@/features/chats/api/chats";
import { useInterrupt, useSendMessage } from "@/features/conversation/api/conversation";
import { useEnqueue } from "@/features/queue/api/queue";
import { isUnreachable, useConnectionState } from "@/features/conversation/model/connection";
import { useDraft, useDraftStore, useSetDraft } from "../model/drafts";
import { isSendKey } from "../model/options";
import { ModelPicker, ModePicker } from "./Pickers";
import { useGrowingTextarea } from "./useGrowingTextarea";

export function Composer({ chat, running }: { chat: Chat; running: boolean }) {
  const draft = useDraft(chat.id);
  const setDraft = useSetDraft();
  const send = useSendMessage(chat.id);
  const enqueue = useEnqueue(chat.id);
  const interrupt = useInterrupt(chat.id);
  const updateChat = useUpdateChat();
  const textarea = useGrowingTextarea(draft);

  useLayoutEffect(() => {
    textarea.current?.focus();
  }, [chat.id]);

  const canSend = draft.trim().length > 0 && !send.isPending && !enqueue.isPending;
  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (!canSend) return;
    const prompt = draft;
    // Cleared at once, so that what the user writes next is never wiped by this send's
    // answer; given back if the send fails and the box is still empty.
    setDraft(chat.id, "");
    const restore = { onError: () => useDraftStore.getState().drafts[chat.id] || setDraft(chat.id, prompt) };
    if (running) enqueue.mutate({ prompt }, restore);
    else send.mutate({ prompt }, restore);
  };

  // "The server cannot be reached" is over once the chat's stream is live again.
  const connection = useConnectionState();
  const mutations = [send, enqueue, interrupt, updateChat];
  const stale = connection === "live" && mutations.some((m) => isUnreachable(m.error));
  useEffect(() => {
    if (!stale) return;
    for (const mutation of mutations) if (isUnreachable(mutation.error)) mutation.reset();
  });

  const error = send.error ?? enqueue.error ?? interrupt.error ?? updateChat.error;
  return (
    <form className="composer" onSubmit={submit}>
      <textarea
        ref={textarea}
        rows={1}
        value={draft}
        placeholder={running ? "The agent is working. Enter queues the next prompt to run after this turn." : "Ask the agent to do something. Enter sends, Shift+Enter adds a line."}
        aria-label="Prompt"
        onChange={(e) => setDraft(chat.id, e.target.value)}
        onKeyDown={(e) => {
          if (isSendKey({ key: e.key, shiftKey: e.shiftKey, altKey: e.altKey, isComposing: e.nativeEvent.isComposing })) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div className="composer-bar">
        <ModelPicker value={chat.model} onChange={(model) => updateChat.mutate({ chatId: chat.id, model })} />
        <ModePicker value={chat.permission_mode} onChange={(mode) => updateChat.mutate({ chatId: chat.id, permission_mode: mode })} />
        <span className="composer-hint muted small">{running ? "Changes apply from the next turn." : ""}</span>
        {running && (
          <Button variant="danger" onClick={() => interrupt.mutate()} disabled={interrupt.isPending} aria-label="Stop the running turn">
            ■ Stop
          </Button>
        )}
        {running ? (
          <Button type="submit" disabled={!canSend} aria-label="Queue" title="Runs after the current turn">
            Queue<span className="key-hint"> ↵</span>
          </Button>
        ) : (
          <Button type="submit" variant="primary" disabled={!canSend} aria-label="Send">
            Send<span className="key-hint"> ↵</span>
          </Button>
        )}
      </div>
      <ErrorText error={error} />
    </form>
  );
}
