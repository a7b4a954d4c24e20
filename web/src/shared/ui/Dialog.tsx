// A modal dialog on the native <dialog> element: focus moves into it, Escape closes it and the
// rest of the page is inert while it is open.
import { useEffect, useRef, type ReactNode, type RefObject } from "react";
import { Button } from "./Button";

/**
 * Shows the `<dialog>` in `ref` as a modal while `open` and closes it otherwise; `onShown`
 * runs each time it opens (to move focus, say).
 */
export function useModal(ref: RefObject<HTMLDialogElement | null>, open: boolean, onShown?: (dialog: HTMLDialogElement) => void): void {
  const shown = useRef(onShown);
  shown.current = onShown;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      // jsdom has no showModal; the attribute is enough for tests.
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
      shown.current?.(dialog);
    } else if (!open && dialog.open) {
      if (typeof dialog.close === "function") dialog.close();
      else dialog.removeAttribute("open");
    }
  }, [ref, open]);
}

export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  danger = false,
  busy = false,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useModal(ref, open);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby="dialog-title"
      onCancel={(event) => {
        event.preventDefault();
        onCancel();
      }}
    >
      {open && (
        <form
          method="dialog"
          onSubmit={(event) => {
            event.preventDefault();
            onConfirm();
          }}
        >
          <h2 id="dialog-title">{title}</h2>
          <div className="dialog-body">{children}</div>
          <div className="dialog-actions">
            <Button onClick={onCancel} autoFocus>
              Cancel
            </Button>
            <Button type="submit" variant={danger ? "danger" : "primary"} disabled={busy}>
              {confirmLabel}
            </Button>
          </div>
        </form>
      )}
    </dialog>
  );
}
