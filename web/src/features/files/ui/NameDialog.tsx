// Asks for a name (a new file or folder, or a rename) in a modal dialog, and says at once
// what is wrong with one that cannot be used.
import { useEffect, useRef, useState } from "react";
import { Button } from "@/shared/ui/Button";

export function NameDialog({
  title,
  label,
  initial,
  confirmLabel,
  problem,
  busy,
  error,
  onConfirm,
  onCancel,
}: {
  title: string;
  label: string;
  initial: string;
  confirmLabel: string;
  /** What is wrong with a name, or `null`. */
  problem: (name: string) => string | null;
  busy: boolean;
  /** The server's refusal, if the last attempt failed. */
  error: string | null;
  onConfirm: (name: string) => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const [name, setName] = useState(initial);
  const [touched, setTouched] = useState(false);
  const issue = problem(name);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) {
      if (typeof element.showModal === "function") element.showModal();
      else element.setAttribute("open", "");
    }
    // Select the name without its extension, as file managers do for a rename.
    const field = input.current;
    if (field) {
      field.focus();
      const dot = initial.lastIndexOf(".");
      field.setSelectionRange(0, dot > 0 ? dot : initial.length);
    }
  }, [initial]);

  return (
    <dialog
      ref={dialog}
      className="dialog"
      aria-labelledby="name-dialog-title"
      onCancel={(event) => {
        event.preventDefault();
        onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          setTouched(true);
          if (!issue) onConfirm(name.trim());
        }}
      >
        <h2 id="name-dialog-title">{title}</h2>
        <label className="field">
          <span>{label}</span>
          <input
            ref={input}
            type="text"
            value={name}
            spellCheck={false}
            autoComplete="off"
            aria-invalid={touched && issue !== null}
            onChange={(event) => {
              setName(event.target.value);
              setTouched(true);
            }}
          />
        </label>
        {touched && issue && <p className="form-error">{issue}</p>}
        {error && <p className="form-error">{error}</p>}
        <div className="dialog-actions">
          <Button onClick={onCancel}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy || (touched && issue !== null)}>
            {confirmLabel}
          </Button>
        </div>
      </form>
    </dialog>
  );
}
