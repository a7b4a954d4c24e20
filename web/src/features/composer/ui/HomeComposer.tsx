// The home screen's prompt box: the first prompt creates the chat (with the model and mode
// picked here, which start as the user's defaults) and opens it. The text is a draft of its
// own, kept like a chat's; if the chat was made but the prompt did not go, the chat opens
// with the prompt in its box, so nothing typed is lost.
import { useState, type FormEvent } from "react";
import { StartChatError, useStartChat } from "@/features/chats/api/chats";
import { useUserSettings } from "@/features/settings/api/settings";
import type { PermissionMode } from "@/shared/api/types";
import { chatPath, navigate } from "@/shared/lib/router";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";
import { useDraft, useDraftStore, useSetDraft } from "../model/drafts";
import { isSendKey } from "../model/options";
import { ModelPicker, ModePicker } from "./Pickers";
import { useGrowingTextarea } from "./useGrowingTextarea";

/** The draft key of the home screen's box (chat drafts are keyed by chat id, a UUID). */
export const HOME_DRAFT = "home";

export function HomeComposer() {
  const settings = useUserSettings();
  const draft = useDraft(HOME_DRAFT);
  const setDraft = useSetDraft();
  const start = useStartChat();
  // `null` follows the user's defaults, which the server applies to what a request leaves
  // out: a prompt sent before the settings arrive still starts with them.
  const [picked, setPicked] = useState<{ model: string | null; mode: PermissionMode | null }>({ model: null, mode: null });
  const defaults = settings.data;
  const model = picked.model ?? defaults?.default_model ?? defaults?.server_default_model ?? "";
  const mode = picked.mode ?? defaults?.default_permission_mode ?? "auto";
  const textarea = useGrowingTextarea(draft);

  const canSend = draft.trim().length > 0 && !start.isPending;
  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (!canSend) return;
    const prompt = draft;
    setDraft(HOME_DRAFT, "");
    start.mutate(
      { prompt, model: picked.model ?? undefined, permission_mode: picked.mode ?? undefined },
      {
        onSuccess: (chat) => navigate(chatPath(chat.id)),
        onError: (error) => {
          const chat = error instanceof StartChatError ? error.chat : null;
          if (chat) {
            setDraft(chat.id, prompt);
            navigate(chatPath(chat.id));
          } else if (!useDraftStore.getState().drafts[HOME_DRAFT]) {
            setDraft(HOME_DRAFT, prompt);
          }
        },
      },
    );
  };

  return (
    <form className="composer home-composer" onSubmit={submit} aria-label="Start a chat">
      <textarea
        ref={textarea}
        rows={2}
        autoFocus
        value={draft}
        placeholder="What should the agent do? Enter starts a new chat, Shift+Enter adds a line."
        aria-label="First prompt"
        onChange={(e) => setDraft(HOME_DRAFT, e.target.value)}
        onKeyDown={(e) => {
          if (isSendKey({ key: e.key, shiftKey: e.shiftKey, altKey: e.altKey, isComposing: e.nativeEvent.isComposing })) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div className="composer-bar">
        {/* Shown once the defaults are known, so that they never show one model, then another. */}
        {defaults && (
          <>
            <ModelPicker value={model} onChange={(next) => setPicked((p) => ({ ...p, model: next }))} />
            <ModePicker value={mode} onChange={(next) => setPicked((p) => ({ ...p, mode: next }))} />
          </>
        )}
        <span className="composer-hint muted small">A new chat with a sandbox of its own.</span>
        <Button type="submit" variant="primary" disabled={!canSend} aria-label="Start chat">
          {start.isPending ? "Starting…" : "Start ↵"}
        </Button>
      </div>
      <ErrorText error={start.error instanceof StartChatError ? start.error.cause : start.error} />
    </form>
  );
}
