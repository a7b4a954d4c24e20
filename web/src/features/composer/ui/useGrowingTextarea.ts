// A prompt box that grows with its text up to 40 % of the window, then scrolls inside.
import { useLayoutEffect, useRef } from "react";

export function useGrowingTextarea(text: string) {
  const textarea = useRef<HTMLTextAreaElement>(null);
  useLayoutEffect(() => {
    const element = textarea.current;
    if (!element) return;
    element.style.height = "auto";
    element.style.height = `${Math.min(element.scrollHeight, window.innerHeight * 0.4)}px`;
  }, [text]);
  return textarea;
}
