// The prompts waiting for the running turn to end, in the order they will run: each can be
// edited, removed, or sent now (which stops the running turn and runs it next). After a turn
// was stopped the queue waits until one is sent, and says so.
import { useState, type FormEvent } from "react";
import type { QueuedMessage } from "@/shared/api/types";
import { Button } from "@/shared/ui/Button";
import { ErrorText } from "@/shared/ui/ErrorText";
import { useDeleteQueued, useQueue, useSendQueuedNow, useUpdateQueued } from "../api/queue";
import "./queue.css";

export function QueuedPrompts({ chatId, running }: { chatId: string; running: boolean }) {
  const queue = useQueue(chatId);
  const remove = useDeleteQueued(chatId);
  const sendNow = useSendQueuedNow(chatId);
  const items = queue.data ?? [];
  if (items.length === 0) return null;
  const error = remove.error ?? sendNow.error;
  return (
    <section className="queue" aria-label="Queued prompts">
      <p className="queue-head small muted">
        {running ? `Queued: ${items.length === 1 ? "this runs" : `these run in order`} when the current turn ends.` : "Queued prompts wait: the last turn was stopped. Send one to go on."}
      </p>
      <ol className="queue-list">
        {items.map((item, index) => (
          <QueuedItem
            key={item.id}
            chatId={chatId}
            item={item}
            position={index + 1}
            busy={remove.isPending || sendNow.isPending}
            onDelete={() => remove.mutate(item.id)}
            onSendNow={() => sendNow.mutate(item.id)}
            running={running}
          />
        ))}
      </ol>
      <ErrorText error={error} />
    </section>
  );
}

function QueuedItem(props: { chatId: string; item: QueuedMessage; position: number; busy: boolean; running: boolean; onDelete: () => void; onSendNow: () => void }) {
  const { chatId, item, position, busy, running } = props;
  const update = useUpdateQueued(chatId);
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(item.prompt);
  const save = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    update.mutate({ id: item.id, prompt: text }, { onSuccess: () => setEditing(false) });
  };
  return (
    <li className="queue-item" data-queued-id={item.id}>
      <span className="queue-pos" aria-label={`Position ${position}`}>
        {position}
      </span>
      {editing ? (
        <form className="queue-edit" onSubmit={save}>
          <textarea rows={2} value={text} autoFocus aria-label="Edit the queued prompt" onChange={(e) => setText(e.target.value)} onKeyDown={(e) => e.key === "Escape" && setEditing(false)} />
          <div className="queue-actions">
            <Button type="submit" variant="primary" disabled={update.isPending || !text.trim()}>
              Save
            </Button>
            <Button variant="ghost" onClick={() => setEditing(false)}>
              Cancel
            </Button>
          </div>
          <ErrorText error={update.error} />
        </form>
      ) : (
        <>
          <span className="queue-prompt">{item.prompt}</span>
          <span className="queue-actions">
            <Button
              variant="ghost"
              onClick={() => {
                setText(item.prompt);
                setEditing(true);
              }}
              disabled={busy}
            >
              Edit
            </Button>
            <Button variant="ghost" onClick={props.onDelete} disabled={busy} aria-label={`Remove queued prompt ${position}`}>
              Remove
            </Button>
            <Button onClick={props.onSendNow} disabled={busy} title={running ? "Stop the running turn and run this prompt next" : "Run this prompt now"}>
              Send now
            </Button>
          </span>
        </>
      )}
    </li>
  );
}
