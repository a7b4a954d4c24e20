// The checkpoint timeline against the real server, the real CLI and the scripted model, in
// Chromium: two turns write two files, restoring the first turn's checkpoint takes the second
// file and the second turn away (with an undo point), and a fork lands in a new chat holding
// the first turn. The steps build on each other (one account, one chat, one browser).
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, startStack, type Stack, sendPrompt, waitForTurnEnd as waitForTurnEndOn, signUpWithNewChat, screenshotIfFailed } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;
const send = (prompt: string) => sendPrompt(page, prompt);
const waitForTurnEnd = () => waitForTurnEndOn(page);
let chatId = "";

function treeItem(name: string): Locator {
  return page.getByRole("treeitem").filter({ has: page.locator(".tree-name", { hasText: new RegExp(`^${name.replace(/\./g, "\\.")}$`) }) });
}

async function showTab(name: "Terminal" | "Files" | "Checkpoints"): Promise<void> {
  await page.getByRole("tab", { name, exact: true }).click();
}

function timeline(): Locator {
  return page.getByRole("list", { name: "Checkpoints, newest first" });
}

/** The timeline entry whose title starts with `title` (e.g. "Turn 1"). */
function entry(title: string): Locator {
  return timeline()
    .getByRole("listitem")
    .filter({ has: page.locator(".checkpoint-title", { hasText: new RegExp(`^${title.replace(/[()]/g, "\\$&")}`) }) });
}

/** The agent's reply with exactly this text, in the conversation. */
function reply(text: string): Locator {
  return page.locator("li.message-assistant").getByText(text, { exact: true });
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1400, height: 860 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  chatId = await signUpWithNewChat(page, "checkpoints@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "failed-checkpoints", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("the checkpoint timeline", () => {
  it("says checkpoints come after turns while there are none", async () => {
    await page.getByRole("button", { name: "Workspace panel" }).click();
    await showTab("Checkpoints");
    await page.getByText("No checkpoints yet.").waitFor();
    await page.getByText(/taken after each turn/).waitFor();
  });

  it("lists a checkpoint per turn, newest first, named by the turn's prompt", async () => {
    // New chats are in `auto`, where writes inside the workspace run without asking.
    await send("[[write:a.txt:alpha]] [[text:wrote the first file]]");
    await waitForTurnEnd();
    // The panel refreshes itself when a turn ends.
    await entry("Turn 1").waitFor();
    await send("[[write:b.txt:beta]] [[text:wrote the second file]]");
    await waitForTurnEnd();
    await entry("Turn 2").waitFor();
    const titles = await timeline().locator(".checkpoint-title").evaluateAll((nodes) => nodes.map((n) => n.firstChild?.textContent ?? ""));
    expect(titles).toEqual(["Turn 2", "Turn 1"]);
    expect(await entry("Turn 2").locator(".checkpoint-prompt").textContent()).toContain("[[write:b.txt:beta]]");
    expect(await entry("Turn 2").locator(".checkpoint-changes").textContent()).toMatch(/\b1 added\b|^1 file added/);
    await screenshot(page, "20-checkpoints-timeline");
  });

  it("shows both files in the tree", async () => {
    await showTab("Files");
    await treeItem("a.txt").waitFor();
    await treeItem("b.txt").waitFor();
  });

  it("restores the first turn's checkpoint after asking: the second file and turn are gone", async () => {
    await showTab("Checkpoints");
    await entry("Turn 1").getByRole("button", { name: "Restore" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(/files created since then are removed/).waitFor();
    await dialog.getByText(/later messages are hidden/).waitFor();
    await screenshot(page, "21-checkpoints-restore-confirm");
    await dialog.getByRole("button", { name: "Restore" }).click();
    await page.getByRole("status").filter({ hasText: /^Restored Turn 1/ }).waitFor();
    // The restore kept the present as an undo point, at the top of the timeline.
    await entry("Before restore (undo point)").waitFor();
    expect(await timeline().locator(".checkpoint-title").first().textContent()).toBe("Before restore (undo point)");
    // The second turn is no longer in the conversation; the first one is.
    await reply("wrote the second file").waitFor({ state: "detached" });
    await reply("wrote the first file").waitFor();
    // Its checkpoint stays, named as a turn that is no longer shown.
    await entry("A turn no longer shown").waitFor();
    await screenshot(page, "22-checkpoints-restored");

    await showTab("Files");
    await treeItem("a.txt").waitFor();
    await treeItem("b.txt").waitFor({ state: "detached" });
  });

  it("works at phone width and in the dark theme", async () => {
    // System → light → dark.
    await page.getByRole("button", { name: /theme \(change\)/ }).click();
    await page.getByRole("button", { name: /theme \(change\)/ }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe("dark");
    await page.setViewportSize({ width: 390, height: 780 });
    await showTab("Checkpoints");
    // By keyboard: Tab moves from an entry's Restore to its Fork, Enter asks, Escape cancels.
    await entry("Turn 1").getByRole("button", { name: "Restore" }).focus();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Fork");
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").getByText(/A new chat starts from Turn 1/).waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    // The chat list slides away (a short transition) before the picture is taken.
    await page.waitForFunction(() => (document.querySelector(".sidebar")?.getBoundingClientRect().right ?? 0) <= 0);
    await screenshot(page, "23-checkpoints-phone-dark");
    await page.setViewportSize({ width: 1400, height: 860 });
  });

  it("forks a new chat from the first turn and lands in it", async () => {
    await entry("Turn 1").getByRole("button", { name: "Fork" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(/A new chat starts from Turn 1/).waitFor();
    await dialog.getByRole("button", { name: "Fork" }).click();
    await page.waitForURL((url) => url.pathname.startsWith("/chats/") && !url.pathname.endsWith(chatId));
    await page.getByRole("heading", { name: /\(fork\)$/ }).waitFor();
    await reply("wrote the first file").waitFor();
    expect(await reply("wrote the second file").count()).toBe(0);
    // The fork's own timeline starts with its first checkpoint, and its workspace has the first file only.
    await entry("Start of this fork").waitFor();
    await screenshot(page, "24-checkpoints-fork");
    await showTab("Files");
    await treeItem("a.txt").waitFor();
    expect(await treeItem("b.txt").count()).toBe(0);
  });
});
