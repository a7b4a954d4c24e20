// Pure parts of the Preview tab: where a preview link leads, and the address a path typed into
// the path bar stands for (always below the preview's root: the bar is not a way to leave it).

/** The place in a link where the preview's root ends and the token exchange begins. */
const AUTH_SEGMENT = "__agentbox_preview/";

/** The link made absolute (links are relative to agentbox's origin without a preview domain). */
export function absoluteLink(url: string, origin: string): string {
  return new URL(url, origin).toString();
}

/** The preview's root (ending in `/`) of an absolute link `open` returned. */
export function previewRoot(link: string): string {
  const at = link.indexOf(AUTH_SEGMENT);
  return at < 0 ? link : link.slice(0, at);
}

/**
 * The address of `path` under `root`. A path is what the app sees (`/`, `/about?x=1`); a leading
 * slash is added, and what would leave the root (another origin, `..`) is dropped.
 */
export function previewAddress(root: string, path: string): string {
  let rest = path.trim().replace(/^\/+/, "");
  if (/^[a-z][a-z0-9+.-]*:/i.test(rest)) rest = "";
  const segments = rest.split(/([?#].*)/s);
  const cleanPath = (segments[0] ?? "")
    .split("/")
    .filter((s) => s !== ".." && s !== ".")
    .join("/");
  return root + cleanPath + (segments[1] ?? "");
}

/** The path bar's text for an address under `root` (what was typed, as the app sees it). */
export function pathOf(root: string, address: string): string {
  return address.startsWith(root) ? "/" + address.slice(root.length) : "/";
}

/** How a port is named in the list. */
export function portTitle(port: { port: number; process?: string | null }): string {
  return port.process ? `${port.port} · ${port.process}` : String(port.port);
}
