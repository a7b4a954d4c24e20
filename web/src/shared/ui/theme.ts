// The colour theme: light, dark, or whatever the system prefers. UI state, kept per browser.
import { useEffect } from "react";
import { create } from "zustand";
import { persist } from "zustand/middleware";

export type ThemeChoice = "system" | "light" | "dark";

interface ThemeState {
  choice: ThemeChoice;
  cycle: () => void;
}

const order: ThemeChoice[] = ["system", "light", "dark"];

export const useThemeStore = create<ThemeState>()(
  persist(
    (set) => ({
      choice: "system",
      cycle: () => set((s) => ({ choice: order[(order.indexOf(s.choice) + 1) % order.length] ?? "system" })),
    }),
    { name: "agentbox.theme" },
  ),
);

export const useThemeChoice = () => useThemeStore((s) => s.choice);
export const useCycleTheme = () => useThemeStore((s) => s.cycle);

/** Puts the chosen theme on <html data-theme>, following the system when asked to. */
export function useApplyTheme(): void {
  const choice = useThemeChoice();
  useEffect(() => {
    const media = window.matchMedia?.("(prefers-color-scheme: dark)");
    const apply = () => {
      const dark = choice === "dark" || (choice === "system" && media?.matches);
      document.documentElement.dataset.theme = dark ? "dark" : "light";
    };
    apply();
    media?.addEventListener("change", apply);
    return () => media?.removeEventListener("change", apply);
  }, [choice]);
}
