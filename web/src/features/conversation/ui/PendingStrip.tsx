// On a phone, a request waiting for the user stays in sight: a strip above the composer, or
// above the workspace sheet while it is open, that leads to the request. A chunk of its own,
// loaded only when a phone has a request waiting.
import { useEffect, useState, type RefObject } from "react";
import "./pending.css";

/**
 * The strip's way to the first unanswered request: the sheet is put away (asking first when a
 * file in it is unsaved), and once it is gone the request is scrolled into view and focused.
 */
function useSeekRequest(conversation: RefObject<HTMLElement | null>, sheetOpen: boolean, closeSheet: () => void) {
  const [seeking, setSeeking] = useState(false);
  useEffect(() => {
    if (!seeking || sheetOpen) return;
    setSeeking(false);
    const card = conversation.current?.querySelector<HTMLElement>(".permission-card.waiting");
    if (!card) return;
    card.scrollIntoView({ block: "center" });
    (card.tabIndex >= 0 ? card : card.querySelector<HTMLElement>("input, textarea, button"))?.focus({ preventScroll: true });
  }, [seeking, sheetOpen, conversation]);
  return () => {
    setSeeking(true);
    if (sheetOpen) closeSheet();
  };
}

/** `closeSheet` is the panel's own close, which asks first when a file in it is unsaved. */
export default function PendingStrip({ conversation, sheetOpen, closeSheet }: { conversation: RefObject<HTMLElement | null>; sheetOpen: boolean; closeSheet: () => void }) {
  const seek = useSeekRequest(conversation, sheetOpen, closeSheet);
  return (
    <div className={sheetOpen ? "pending-strip over-sheet" : "pending-strip"} role="status">
      <button type="button" onClick={seek}>
        Waiting for your answer <span aria-hidden="true">›</span>
      </button>
    </div>
  );
}
