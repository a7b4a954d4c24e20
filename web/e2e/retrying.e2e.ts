// A model API that is overloaded or rate-limiting (issue 15, item 4), against the real server,
// the real CLI (allowed to retry, unlike the other suites) and the scripted model, in Chromium:
// the CLI's retries show as one line that names the latest attempt, then the reply.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, sendPrompt, signUpWithNewChat, startStack, type Stack, waitForTurnEnd } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  stack = await startStack(() => ["--cli-max-retries", "3"]);
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  await signUpWithNewChat(page, "retrying@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "retrying-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("a model API that refuses for a while", () => {
  for (const [status, marker, words, reply] of [
    [529, "[[error:529:2]]", "The model API is overloaded; retrying (attempt 2", "patience paid off"],
    [429, "[[error:429:1]]", "The model API is rate-limiting this server; retrying (attempt 1", "rate limit passed"],
  ] as const) {
    it(`folds the CLI's retries after ${status} into one line, then shows the reply`, async () => {
      await page.getByRole("button", { name: "+ New chat" }).click();
      await page.getByText("Start the conversation").waitFor();
      await sendPrompt(page, `${marker} [[text:${reply}]] busy model`);
      const turn = page.locator("li.message-assistant.status-completed");
      await turn.getByText(reply).waitFor();
      await waitForTurnEnd(page);
      const notices = turn.locator(".notice-block", { hasText: "retrying" });
      expect(await notices.count()).toBe(1);
      expect(await notices.first().textContent()).toContain(words);
      expect(await page.locator("li.message-assistant.status-failed").count()).toBe(0);
      await screenshot(page, `retrying-${status}`);
    });
  }
});
