// Opening the account settings from elsewhere in the app: an egress refusal in the
// conversation links to the allowed hosts. A request counter that the settings button watches.
import { useEffect, useRef } from "react";
import { create } from "zustand";

const useOpenerStore = create<{ requests: number }>()(() => ({ requests: 0 }));

/** Asks the account settings dialog to open. */
export function openAccountSettings(): void {
  useOpenerStore.setState((s) => ({ requests: s.requests + 1 }));
}

/** Calls `show` each time {@link openAccountSettings} is called after the caller mounted. */
export function useAccountSettingsRequest(show: () => void): void {
  const requests = useOpenerStore((s) => s.requests);
  const seen = useRef(requests);
  const latest = useRef(show);
  latest.current = show;
  useEffect(() => {
    if (requests !== seen.current) {
      seen.current = requests;
      latest.current();
    }
  }, [requests]);
}
