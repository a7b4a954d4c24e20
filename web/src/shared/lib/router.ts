// The app's few routes (`/`, `/chats/<id>`, `/tasks` and `/admin`) on the History API. A router library would
// be more code than the routes themselves.
import { useSyncExternalStore } from "react";

export type Route = { name: "home" } | { name: "chat"; chatId: string } | { name: "admin" } | { name: "tasks" };

const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener("popstate", listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("popstate", listener);
  };
}

export function parseRoute(path: string): Route {
  if (/^\/admin\/?$/.test(path)) return { name: "admin" };
  if (/^\/tasks\/?$/.test(path)) return { name: "tasks" };
  const match = /^\/chats\/([0-9a-fA-F-]{36})\/?$/.exec(path);
  return match?.[1] ? { name: "chat", chatId: match[1].toLowerCase() } : { name: "home" };
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  for (const listener of listeners) listener();
}

export const adminPath = "/admin";
export const tasksPath = "/tasks";

export function chatPath(chatId: string): string {
  return `/chats/${chatId}`;
}

let cached: { path: string; route: Route } | null = null;

function snapshot(): Route {
  const path = window.location.pathname;
  if (cached?.path !== path) cached = { path, route: parseRoute(path) };
  return cached.route;
}

export function useRoute(): Route {
  return useSyncExternalStore(subscribe, snapshot);
}
