// Finding a chat and reading a turn (issue 15), against the real server, the real CLI and
// the scripted model, in Chromium: a title appears after the first turn, search finds a
// chat by the words of a reply, pins and the archive.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, sendPrompt, signUpWithNewChat, startStack, type Stack, waitForTurnEnd } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;

const sidebar = () => page.getByRole("complementary", { name: "Chats" });

/** Clicks one of a chat's actions, which show when the pointer is over its item. */
async function chatAction(scope: Locator, chat: RegExp, action: RegExp): Promise<void> {
  const item = scope.locator("li.chat-item").filter({ has: page.getByRole("link", { name: chat }) });
  await item.hover();
  await item.getByRole("button", { name: action }).click();
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  await signUpWithNewChat(page, "conversation@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "conversation-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("finding a chat", () => {
  it("names a chat after its first turn, in the header and the list, with a preview", async () => {
    await page.getByRole("heading", { level: 1, name: "New chat" }).waitFor();
    await sendPrompt(page, "Plan the garden party [[text:Bring lanterns and a flamingo cake.]]");
    await waitForTurnEnd(page);
    const title = "Plan the garden party [[text:Bring lanterns and a flamingo…";
    await page.getByRole("heading", { level: 1, name: title }).waitFor();
    const today = sidebar().getByRole("region", { name: "Today" });
    await today.getByRole("link", { name: new RegExp("Plan the garden party") }).waitFor();
    await today.getByText("Bring lanterns and a flamingo cake.").waitFor();
    await screenshot(page, "conversation-01-titled");
  });

  it("finds a chat by a word of its reply, not only its title", async () => {
    // A second chat, so that the search has something to leave out.
    await page.getByRole("button", { name: "+ New chat" }).click();
    await page.getByText("Start the conversation").waitFor();
    await sendPrompt(page, "Something else entirely [[text:Nothing to see.]]");
    await waitForTurnEnd(page);
    await sidebar().getByRole("link", { name: /Something else entirely/ }).waitFor();

    await sidebar().getByRole("searchbox", { name: "Search chats" }).fill("flamingo");
    const results = sidebar().getByRole("region", { name: "Search results" });
    await results.getByRole("link", { name: /Plan the garden party/ }).waitFor();
    await expect.poll(() => results.getByRole("link").count(), { timeout: PATIENCE }).toBe(1);
    await screenshot(page, "conversation-02-search");
    await sidebar().getByRole("searchbox", { name: "Search chats" }).fill("no such word anywhere");
    await sidebar().getByText("No chat matches “no such word anywhere”.").waitFor();
    await sidebar().getByRole("searchbox", { name: "Search chats" }).fill("");
  });

  it("pins a chat to the top and archives one out of the list", async () => {
    await chatAction(sidebar(), /Plan the garden party/, /^Pin /);
    const pinned = sidebar().getByRole("region", { name: "Pinned" });
    await pinned.getByRole("link", { name: /Plan the garden party/ }).waitFor();

    await chatAction(sidebar(), /Something else entirely/, /^Archive /);
    await sidebar().getByRole("link", { name: /Something else entirely/ }).waitFor({ state: "detached" });
    await sidebar().getByRole("button", { name: "Show archived chats" }).click();
    const archived = sidebar().getByRole("region", { name: "Archived" });
    await archived.getByRole("link", { name: /Something else entirely/ }).waitFor();
    await chatAction(archived, /Something else entirely/, /^Unarchive /);
    await sidebar().getByRole("region", { name: "Today" }).getByRole("link", { name: /Something else entirely/ }).waitFor();
  });
});
