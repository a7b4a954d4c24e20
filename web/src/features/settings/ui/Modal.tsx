// A plain modal on the native <dialog> element, for forms that are more than a yes or no (the
// shared ConfirmDialog has fixed Cancel/confirm actions). Focus moves to the element marked
// `data-autofocus` (else the first control), Escape and the close button call `onClose`, the
// rest of the page is inert while it is open, and closing returns focus where it was.
import { useId, useRef, type ReactNode } from "react";
import { useModal } from "@/shared/ui/Dialog";
import { CloseIcon } from "@/shared/ui/icons";
import "./settings.css";

export function Modal({ open, title, onClose, children }: { open: boolean; title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useModal(ref, open, (dialog) => {
    const first = dialog.querySelector<HTMLElement>("[data-autofocus]") ?? dialog.querySelector<HTMLElement>(".settings-body :is(input, textarea, select, button)");
    first?.focus();
  });
  return (
    <dialog
      ref={ref}
      className="dialog settings-dialog"
      aria-labelledby={titleId}
      onCancel={(event) => {
        // Escape: the parent decides (it owns `open`).
        event.preventDefault();
        onClose();
      }}
    >
      {open && (
        <>
          <div className="settings-head">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="icon-btn" aria-label="Close" onClick={onClose}>
              <CloseIcon />
            </button>
          </div>
          <div className="settings-body">{children}</div>
        </>
      )}
    </dialog>
  );
}
