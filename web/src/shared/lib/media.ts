// Whether the window is phone-sized: the width at which the chat list becomes a drawer and the
// workspace panel a bottom sheet (the breakpoint of styles.css; keep the two equal).
import { useSyncExternalStore } from "react";

export const PHONE_QUERY = "(max-width: 760px)";

function phoneQuery(): MediaQueryList | undefined {
  return window.matchMedia?.(PHONE_QUERY);
}

export function isPhone(): boolean {
  return phoneQuery()?.matches ?? false;
}

function subscribe(listener: () => void): () => void {
  const query = phoneQuery();
  query?.addEventListener("change", listener);
  return () => query?.removeEventListener("change", listener);
}

/** Re-renders when the window crosses the phone width (a rotated phone, a resized window). */
export function usePhone(): boolean {
  return useSyncExternalStore(subscribe, isPhone);
}
