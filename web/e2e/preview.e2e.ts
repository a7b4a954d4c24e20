// Port previews in Chromium against the real server, CLI and sandbox: a web server started in
// the chat's sandbox (from its terminal) is listed in the Preview tab and shown in the panel's
// frame (previews under /preview/ on agentbox's origin, with the warning), and, with a preview
// domain (`*.localhost`, which Chromium resolves to this machine), opened in a new tab at an
// origin of its own, where the page cannot read agentbox's session.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, signUpWithNewChat, startStack, type Stack } from "./support";

// The page reports what it can reach of agentbox: its storage, its frame's parent, cookies.
const PAGE = [
  "<h1>preview works</h1><p id=probe></p><script>",
  "let parent; try { parent = String(!!window.parent.document.body && window.parent !== window); } catch (e) { parent = 'blocked'; }",
  "document.getElementById('probe').textContent = 'storage=' + localStorage.length + ' parent=' + parent + ' cookie=' + document.cookie.length;",
  "</script>",
];

async function openWorkspace(page: Page): Promise<void> {
  const toggle = page.getByRole("button", { name: "Workspace panel", exact: true });
  if ((await toggle.getAttribute("aria-pressed")) !== "true") await toggle.click();
}

/** Starts a web server on port 8000 in the chat's sandbox, typed into its terminal. */
async function startServer(page: Page): Promise<void> {
  await openWorkspace(page);
  await page.getByRole("tab", { name: "Terminal", exact: true }).click();
  await page.locator('.terminal-view:not([hidden])[data-status="open"]').waitFor();
  await page.locator(".terminal-view:not([hidden]) .terminal-host").click();
  const lines = ["mkdir -p /tmp/site && cat > /tmp/site/index.html <<'EOF'", ...PAGE, "EOF", "nohup python3 -m http.server 8000 --bind 127.0.0.1 --directory /tmp/site >/dev/null 2>&1 &"];
  for (const line of lines) {
    await page.keyboard.type(line);
    await page.keyboard.press("Enter");
  }
  await page.getByRole("tab", { name: "Preview", exact: true }).click();
  await page.locator('.preview-port[data-port="8000"]').getByText("8000 · python3").waitFor({ timeout: PATIENCE });
}

describe("port previews under agentbox's origin", () => {
  let stack: Stack;
  let context: BrowserContext;
  let page: Page;

  afterEach(async (test) => {
    await screenshotIfFailed(page, "failed-preview", test.task);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("says nothing listens, then lists the server and shows it in the panel's frame", async () => {
    stack = await startStack();
    context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1400, height: 860 } });
    context.setDefaultTimeout(PATIENCE);
    page = await context.newPage();
    await signUpWithNewChat(page, "preview@example.com");
    await openWorkspace(page);
    await page.getByRole("tab", { name: "Preview", exact: true }).click();
    await page.getByText("Nothing listens yet.").waitFor();
    await page.getByRole("note").getByText(/a previewed app can read your agentbox session/).waitFor();
    await startServer(page);
    await page.locator('.preview-port[data-port="8000"]').getByRole("button", { name: "View" }).click();
    const frame = page.frameLocator("iframe.preview-frame");
    await frame.getByRole("heading", { name: "preview works" }).waitFor();
    // On agentbox's own origin the page shares its storage: what the warning says.
    expect(await frame.locator("#probe").textContent()).toMatch(/^storage=[1-9]/);
    await screenshot(page, "preview-10-frame");
    await page.getByRole("button", { name: "Phone width" }).click();
    expect(await page.locator("iframe.preview-frame").evaluate((frame) => frame.getBoundingClientRect().width)).toBe(390);
    await page.getByRole("button", { name: "Phone width" }).click();
    // The path bar: a path the server does not have answers its 404 inside the frame.
    await page.getByRole("textbox", { name: "Path" }).fill("/missing.html");
    await page.getByRole("button", { name: "Go" }).click();
    await frame.getByText(/File not found/).waitFor();
    await page.getByRole("textbox", { name: "Path" }).fill("/");
    await page.getByRole("button", { name: "Go" }).click();
    await frame.getByRole("heading", { name: "preview works" }).waitFor();
  });
});

describe("port previews at origins of their own", () => {
  let stack: Stack;
  let context: BrowserContext;
  let page: Page;

  afterEach(async (test) => {
    await screenshotIfFailed(page, "failed-preview-domain", test.task);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("opens the server in a new tab where agentbox's session is out of reach", async () => {
    stack = await startStack((port) => ["--preview-domain", `http://p-{port}-{chat}.localhost:${port}`]);
    context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1400, height: 860 } });
    context.setDefaultTimeout(PATIENCE);
    page = await context.newPage();
    const chatId = await signUpWithNewChat(page, "preview-domain@example.com");
    await startServer(page);
    expect(await page.getByRole("note").count()).toBe(0);
    const opened = context.waitForEvent("page");
    await page.locator('.preview-port[data-port="8000"]').getByRole("button", { name: "Open in new tab" }).click();
    const tab = await opened;
    await tab.getByRole("heading", { name: "preview works" }).waitFor({ timeout: PATIENCE });
    expect(new URL(tab.url()).hostname).toBe(`p-8000-${chatId}.localhost`);
    // Nothing of agentbox's storage, no opener to reach back through, and the preview's own
    // cookie is HttpOnly.
    expect(await tab.locator("#probe").textContent()).toBe("storage=0 parent=false cookie=0");
    expect(await tab.evaluate(() => window.opener === null)).toBe(true);
    await screenshot(tab, "preview-20-own-origin");
  });
});
