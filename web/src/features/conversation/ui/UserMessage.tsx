// A prompt in the conversation, with Copy (its text to the clipboard) and Edit (changed in
// place, then sent again from the checkpoint before it, after asking: see Rewind).
import { useState } from "react";
import { Button } from "@/shared/ui/Button";
import type { MessageView } from "../model/conversation";
import { promptText } from "../model/rewind";

interface UserMessageProps {
  message: MessageView;
  /** Why the prompt cannot be edited now, or null when it can. */
  editBlocked: string | null;
  onEdit: (text: string) => void;
}

export function UserMessage({ message, editBlocked, onEdit }: UserMessageProps) {
  const text = promptText(message);
  const [editing, setEditing] = useState<string | null>(null);
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const copy = () => {
    navigator.clipboard?.writeText(text).then(
      () => setCopied("yes"),
      () => setCopied("no"),
    ) ?? setCopied("no");
  };
  if (editing !== null) {
    return (
      <li className="message message-user editing" data-message-id={message.id}>
        <form
          className="bubble-edit"
          onSubmit={(e) => {
            e.preventDefault();
            if (editing.trim()) onEdit(editing);
            setEditing(null);
          }}
        >
          <textarea aria-label="Edited prompt" value={editing} rows={Math.min(10, editing.split("\n").length + 1)} onChange={(e) => setEditing(e.target.value)} autoFocus />
          <div className="bubble-actions">
            <Button onClick={() => setEditing(null)}>Cancel</Button>
            <Button type="submit" variant="primary" disabled={!editing.trim()}>
              Send edited prompt
            </Button>
          </div>
        </form>
      </li>
    );
  }
  return (
    <li className="message message-user" data-message-id={message.id}>
      <div className="bubble">{text}</div>
      <div className="bubble-actions">
        <button type="button" className="link small" onClick={copy} aria-label="Copy the prompt">
          {copied === "yes" ? "Copied" : copied === "no" ? "Copy failed" : "Copy"}
        </button>
        <button type="button" className="link small" onClick={() => setEditing(text)} disabled={editBlocked !== null} title={editBlocked ?? "Edit the prompt and run it again from here"} aria-label="Edit the prompt">
          Edit
        </button>
      </div>
    </li>
  );
}
