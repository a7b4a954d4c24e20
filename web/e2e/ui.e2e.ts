// The web UI against the real server, the real CLI and the scripted model, in Chromium.
// The steps build on each other (one account, one browser), so they run in order.
import { join } from "node:path";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, startStack, type Stack, sendPrompt, waitForTurnEnd as waitForTurnEndOn } from "./support";

const EMAIL = "first@example.com";
const PASSWORD = "a long password";

let stack: Stack;
let context: BrowserContext;
let page: Page;
const send = (prompt: string) => sendPrompt(page, prompt);
const waitForTurnEnd = () => waitForTurnEndOn(page);

/** The assistant message of the last turn. */
function lastTurn(): Locator {
  return page.locator("li.message-assistant").last();
}

async function openNewChat(): Promise<string> {
  const before = page.url();
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.waitForURL((url) => url.pathname.startsWith("/chats/") && url.href !== before, { timeout: PATIENCE });
  await page.getByText("Start the conversation").waitFor({ timeout: PATIENCE });
  return new URL(page.url()).pathname.split("/").pop() ?? "";
}

/** Every rendered event carries its seq; a duplicate would show the same seq twice. */
async function renderedSeqs(): Promise<string[]> {
  return page.locator("li.message-assistant [data-seq]").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-seq") ?? ""));
}

/** Waits, asking the API directly (not through the browser), until the chat's turn is over. */
async function waitUntilIdle(chatId: string): Promise<void> {
  const stored = await page.evaluate(() => localStorage.getItem("agentbox.session"));
  const token = (JSON.parse(stored ?? "{}") as { state?: { session?: { accessToken?: string } } }).state?.session?.accessToken;
  const deadline = Date.now() + PATIENCE;
  while (Date.now() < deadline) {
    const response = await fetch(`${stack.base}/api/v1/chats/${chatId}`, { headers: { authorization: `Bearer ${token}` } });
    const chat = (await response.json()) as { status?: string };
    if (response.ok && chat.status === "idle") return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`chat ${chatId} did not become idle`);
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
});

afterEach(async (context) => {
  // What the page showed when a step failed, next to the other screenshots.
  if (context.task.result?.state === "fail") {
    await screenshot(page, `failed-${context.task.name.replace(/[^a-z0-9]+/gi, "-")}`).catch(() => undefined);
  }
});

afterAll(async () => {
  await stack?.stop();
});

describe("the web UI", () => {
  it("leads the first visitor to create the first account", async () => {
    await page.goto("/");
    await page.getByRole("heading", { name: "Create the first account" }).waitFor();
    await screenshot(page, "01-first-account");
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel(/^Password/).fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Chat with a coding agent" }).waitFor();
    await page.getByText("No chats yet.").waitFor();
    await screenshot(page, "02-empty-home");
  });

  it("creates a chat and shows a turn: thinking, tool cards, text, usage", async () => {
    const chatId = await openNewChat();
    expect(chatId).toMatch(/^[0-9a-f-]{36}$/);
    const file = join(stack.agentHome(chatId), "notes.md");
    const write = JSON.stringify({ file_path: file, content: "# Notes\nfirst line\n" });
    await send(`[[think]] [[bash:echo hello-from-e2e]] [[tool:Write:${write}]] [[text:All **done** here.]]`);
    await page.locator(".message-user .bubble").filter({ hasText: "hello-from-e2e" }).waitFor();
    // The turn's message may not be shown yet when the prompt is: wait for it to end, not
    // only for no turn to be running (a running turn's thinking is open).
    await page.locator("li.message-assistant.status-completed").last().waitFor();
    await waitForTurnEnd();

    const turn = lastTurn();
    await turn.locator("details.thinking").waitFor();
    expect(await turn.locator("details.thinking").count()).toBe(1);
    // Thinking starts collapsed and opens on click.
    expect(await turn.locator("details.thinking").getAttribute("open")).toBeNull();
    await turn.locator("details.thinking summary").click();
    await turn.getByText("Considering the request carefully.").waitFor();

    // Tool cards are one line each until opened.
    const bash = turn.locator('[data-tool="Bash"]');
    expect(await bash.count()).toBe(1);
    await bash.locator(".tool-summary").filter({ hasText: /^Ran `echo hello-from-e2e` · exit 0/ }).waitFor();
    await bash.locator("summary").click();
    await bash.locator(".tool-command").filter({ hasText: "$ echo hello-from-e2e" }).waitFor();
    await bash.locator(".tool-output").filter({ hasText: "hello-from-e2e" }).waitFor();

    const writeCard = turn.locator('[data-tool="Write"]');
    await writeCard.locator(".tool-summary").filter({ hasText: "Wrote notes.md · 2 lines" }).waitFor();
    await writeCard.locator("summary").click();
    await writeCard.locator(".diff-add").filter({ hasText: "first line" }).waitFor();

    // The final text is rendered as Markdown.
    await turn.locator(".markdown strong").filter({ hasText: "done" }).waitFor();
    await turn.locator(".usage").filter({ hasText: "in" }).waitFor();
    // The chat is idle again in the sidebar.
    await page.locator(".chat-item.active .status-idle").waitFor();
    await screenshot(page, "03-turn");
  });

  it("shows the text as the model writes it, then the whole block once", async () => {
    const reply = "This reply is written slowly, a few words at a time, so that the reader sees it grow before the block is complete.";
    await send(`[[slow:400]] [[text:${reply}]]`);
    // The mock sends the text in three pieces, 400 ms apart: for most of a second the live
    // text holds a part of the reply only.
    const partial = await page.waitForFunction(
      (full) => {
        const live = [...document.querySelectorAll("li.message-assistant .block-text.live")].pop();
        const text = live?.textContent?.trim() ?? "";
        return text.length > 0 && text.length < full.length ? text : null;
      },
      reply,
      { polling: "raf", timeout: PATIENCE },
    );
    expect(reply.startsWith(String(await partial.jsonValue()))).toBe(true);
    await screenshot(page, "03b-streaming-text");
    await waitForTurnEnd();
    expect(await lastTurn().locator(".block-text.live").count()).toBe(0);
    expect(await lastTurn().getByText(reply).count()).toBe(1);
  });

  it("shows the whole turn exactly once after a reload in the middle of it", async () => {
    await send("[[think]] [[bash:echo before-the-pause]] [[sleep:6]] [[text:after the pause]]");
    const turn = lastTurn();
    await turn.locator('[data-tool="Bash"] .tool-summary').filter({ hasText: "sleep" }).waitFor();
    expect(await turn.getAttribute("aria-busy")).toBe("true");
    await page.reload();
    await page.locator(".connection-live").waitFor();
    await waitForTurnEnd();

    const after = lastTurn();
    await after.getByText("after the pause").waitFor();
    expect(await after.locator("details.thinking").count()).toBe(1);
    expect(await after.locator('[data-tool="Bash"]').count()).toBe(2);
    expect(await after.locator('[data-tool="Bash"] .tool-summary').filter({ hasText: "before-the-pause" }).count()).toBe(1);
    expect(await after.getByText("after the pause").count()).toBe(1);
    expect(await page.locator(".message-user").count()).toBe(3);
    const seqs = await renderedSeqs();
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("resumes by itself after the network drops, showing every event once", async () => {
    await send("[[bash:echo before-the-drop]] [[sleep:3]] [[text:back after the drop]]");
    const turn = lastTurn();
    // The call's line has its exit code once it finished.
    await turn.locator('[data-tool="Bash"] .tool-summary').filter({ hasText: /^Ran `echo before-the-drop` · exit 0/ }).waitFor();
    await context.setOffline(true);
    await page.locator(".connection-offline").waitFor();
    // The turn finishes on the server while the browser is offline.
    await waitUntilIdle(new URL(page.url()).pathname.split("/").pop() ?? "");
    expect(await turn.getByText("back after the drop").count()).toBe(0);
    await context.setOffline(false);
    await page.locator(".connection-live").waitFor();
    await turn.getByText("back after the drop").waitFor();
    await waitForTurnEnd();
    expect(await turn.locator('[data-tool="Bash"]').count()).toBe(2);
    expect(await turn.getByText("back after the drop").count()).toBe(1);
    const seqs = await renderedSeqs();
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("stops a running turn", async () => {
    await send("[[sleep:60]]");
    const stop = page.getByRole("button", { name: "Stop the running turn" });
    await stop.waitFor();
    await lastTurn().locator('[data-tool="Bash"]').waitFor();
    await page.locator(".chat-item.active .status-running").waitFor();
    await screenshot(page, "04-running");
    await stop.click();
    await lastTurn().locator(".badge").filter({ hasText: "Stopped" }).waitFor();
    await page.getByRole("button", { name: "Send" }).waitFor();
    expect(await lastTurn().getAttribute("aria-busy")).toBe("false");
  });

  it("renames, searches and deletes chats, asking before it deletes", async () => {
    await openNewChat();
    const item = page.locator(".chat-item.active");
    await item.hover();
    await item.getByRole("button", { name: /^Rename/ }).click();
    const title = page.getByRole("textbox", { name: "Chat title" });
    await title.fill("Scratch chat");
    await title.press("Enter");
    await page.locator(".chat-item .chat-title").filter({ hasText: "Scratch chat" }).waitFor();
    await page.getByRole("heading", { name: "Scratch chat" }).waitFor();

    await page.getByRole("searchbox", { name: "Search chats" }).fill("scratch");
    expect(await page.locator(".chat-item").count()).toBe(1);
    await page.getByRole("searchbox", { name: "Search chats" }).fill("no such chat");
    await page.getByText("No chat matches").waitFor();
    await page.getByRole("searchbox", { name: "Search chats" }).fill("");
    expect(await page.locator(".chat-item").count()).toBe(2);

    await page.locator(".chat-item.active").hover();
    await page.getByRole("button", { name: "Delete “Scratch chat”" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("cannot be undone").waitFor();
    await screenshot(page, "05-delete-confirmation");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await page.locator(".chat-item").count()).toBe(2);
    await page.getByRole("button", { name: "Delete “Scratch chat”" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await page.getByRole("heading", { name: "Chat with a coding agent" }).waitFor();
    expect(await page.locator(".chat-item").count()).toBe(1);
  });

  it("returns to sign-in when the session ends, keeping the open chat and the draft", async () => {
    await page.locator(".chat-item .chat-link").first().click();
    await page.locator(".message-user").first().waitFor();
    const chatUrl = page.url();
    await page.getByRole("textbox", { name: "Prompt" }).fill("a draft worth keeping");
    // The server stops accepting this session: every API call answers 401, refresh too.
    await page.route("**/api/v1/**", (route) =>
      route.fulfill({ status: 401, contentType: "application/json", body: '{"error":{"code":"unauthorized","message":"expired"}}' }),
    );
    await page.getByRole("button", { name: "+ New chat" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByText("Your session has ended").waitFor();
    await screenshot(page, "06-session-ended");
    await page.unroute("**/api/v1/**");
    expect(await page.getByLabel("Email").inputValue()).toBe(EMAIL);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("textbox", { name: "Prompt" }).waitFor();
    expect(page.url()).toBe(chatUrl);
    expect(await page.getByRole("textbox", { name: "Prompt" }).inputValue()).toBe("a draft worth keeping");
  });

  it("works at phone width and in the dark theme", async () => {
    // The first turn's Write opened the workspace panel (a wide screen, the chat's first file
    // change); at phone width it would cover the chat.
    await page.getByRole("button", { name: "Close the workspace panel" }).click();
    await page.setViewportSize({ width: 390, height: 780 });
    await page.getByRole("button", { name: "Show chats" }).click();
    await page.locator(".sidebar-open").waitFor();
    await screenshot(page, "07-phone-chats");
    await page.locator(".sidebar-open .chat-link").first().click();
    await page.locator(".sidebar-open").waitFor({ state: "detached" });
    await screenshot(page, "08-phone-chat");
    await page.setViewportSize({ width: 1280, height: 820 });
    // System → light → dark.
    await page.getByRole("button", { name: /theme \(change\)/ }).click();
    await page.getByRole("button", { name: /theme \(change\)/ }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe("dark");
    await page.getByRole("button", { name: "Workspace panel" }).click();
    await page.getByRole("tab", { name: "Checkpoints" }).click();
    await page.getByRole("list", { name: "Checkpoints, newest first" }).or(page.getByText("No checkpoints yet.")).first().waitFor();
    await screenshot(page, "09-dark-workspace");
  });

  it("signs out and in again", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.getByText("Your session has ended").count()).toBe(0);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(".chat-item").first().waitFor();
  });
});
