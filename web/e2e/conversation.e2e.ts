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

describe("honest numbers", () => {
  /** The dollar figure in a text ("22.9k in · 3 out · $0.07" → 0.07). */
  const dollars = (text: string): number => Number(/\$([0-9.]+)/.exec(text)?.[1] ?? NaN);

  it("shows each turn's own cost over three turns of a kept process, the chat's and today's totals and the context", async () => {
    await page.getByRole("button", { name: "+ New chat" }).click();
    await page.getByText("Start the conversation").waitFor();
    const footers = page.locator("li.message-assistant .usage");
    const prompts = ["[[text:one]] first", "[[text:two]] second", "[[text:three]] third"];
    for (const [index, prompt] of prompts.entries()) {
      await sendPrompt(page, prompt);
      // The turn has ended once its footer shows its figures.
      await expect.poll(() => footers.count(), { timeout: PATIENCE }).toBe(index + 1);
      await waitForTurnEnd(page);
    }
    const [first = NaN, second = NaN, third = NaN] = (await footers.allTextContents()).map(dollars);
    // The CLI's running total would read about 1x, 2x and 3x the first turn.
    expect(first).toBeGreaterThan(0);
    expect(third).toBeLessThan(first * 1.5);
    const figures = page.getByLabel("Costs and context");
    await figures.getByText(/^This chat \$/).waitFor();
    // Refreshed after the last turn: the chat's total is the three turns'.
    await expect
      .poll(async () => dollars((await figures.getByText(/^This chat \$/).textContent()) ?? ""), { timeout: PATIENCE })
      .toBeCloseTo(first + second + third, 1);
    await figures.getByText(/^Today \$/).waitFor();
    await figures.getByRole("meter", { name: "Context used" }).waitFor();
    await figures.getByText(/of 200k \(\d+ %\)/).waitFor();
    await screenshot(page, "conversation-03-costs");
  });
});

describe("quiet tool cards", () => {
  const lastTurn = () => page.locator("li.message-assistant").last();

  async function newChatTurn(prompt: string): Promise<void> {
    await page.getByRole("button", { name: "+ New chat" }).click();
    await page.getByText("Start the conversation").waitFor();
    const footers = page.locator("li.message-assistant .usage");
    await sendPrompt(page, prompt);
    await expect.poll(() => footers.count(), { timeout: PATIENCE }).toBe(1);
    await waitForTurnEnd(page);
  }

  it("shows a command as one line that opens to its output", async () => {
    await newChatTurn("[[bash:echo hello-from-the-card]] run it");
    const card = lastTurn().locator("details.tool-card[data-tool=Bash]");
    await card.getByText(/^Ran `echo hello-from-the-card` · exit 0 · \d+\.\d s$/).waitFor();
    expect(await card.getAttribute("open")).toBeNull();
    expect(await card.locator(".tool-output").count()).toBe(0);
    await card.locator("summary").click();
    await card.locator(".tool-output").getByText("hello-from-the-card").waitFor();
    await screenshot(page, "conversation-04-card-open");
  });

  it("shows a TodoWrite as a checklist that updates in place", async () => {
    const first = JSON.stringify({ todos: [{ content: "Write the test", status: "in_progress", activeForm: "Writing the test" }, { content: "Fix the bug", status: "pending", activeForm: "Fixing the bug" }] });
    const second = JSON.stringify({ todos: [{ content: "Write the test", status: "completed", activeForm: "Writing the test" }, { content: "Fix the bug", status: "in_progress", activeForm: "Fixing the bug" }] });
    await newChatTurn(`[[tool:TodoWrite:${first}]] [[tool:TodoWrite:${second}]] plan it`);
    const cards = lastTurn().locator("details.tool-card[data-tool=TodoWrite]");
    await expect.poll(() => cards.count(), { timeout: PATIENCE }).toBe(1);
    const plan = cards.getByRole("list", { name: "Plan" });
    await plan.getByText("Write the test (done)").waitFor();
    await plan.getByText("Fix the bug (in progress)").waitFor();
    await cards.getByText("Plan · 1 of 2 steps done").waitFor();
    await screenshot(page, "conversation-05-todo");
  });

  it("nests a Task's own tool calls in its card, without the CLI's internal text", async () => {
    // In the foreground, so that the sub-agent's calls are part of the turn.
    const task = JSON.stringify({ description: "Look around", prompt: "[[bash:echo nested-call-output]] look around", subagent_type: "general-purpose", run_in_background: false });
    await newChatTurn(`[[tool:Task:${task}]] delegate`);
    const card = lastTurn().locator("details.tool-card[data-tool=Task]").first();
    await card.getByText("Task: Look around").waitFor();
    await card.locator("summary").first().click();
    const nested = card.getByLabel("Sub-agent");
    const inner = nested.locator("details.tool-card[data-tool=Bash]");
    await inner.getByText(/^Ran `echo nested-call-output`/).waitFor();
    await inner.locator("summary").click();
    await inner.getByText("nested-call-output").first().waitFor();
    // The sub-agent's call is inside the Task's card, not beside it.
    expect(await lastTurn().locator(":scope > details.tool-card[data-tool=Bash]").count()).toBe(0);
    const shown = (await lastTurn().textContent()) ?? "";
    expect(shown).not.toContain("do not mention to user");
    expect(shown).not.toContain("internal metadata");
    expect(shown).not.toContain("Subagent hand-back");
    await screenshot(page, "conversation-06-task");
  });
});

describe("recoverable failures", () => {
  it("retries a failed turn with its prompt", async () => {
    await page.getByRole("button", { name: "+ New chat" }).click();
    await page.getByText("Start the conversation").waitFor();
    await sendPrompt(page, "[[error:500:1]] [[text:second time lucky]] try it");
    const failed = page.locator("li.message-assistant.status-failed");
    await failed.waitFor();
    await waitForTurnEnd(page);
    // No "0 in · 0 out · $0" for a turn the model never answered.
    expect(await failed.locator(".usage").count()).toBe(0);
    await failed.getByRole("button", { name: "Retry" }).click();
    await page.locator("li.message-assistant.status-completed").getByText("second time lucky").waitFor();
    await waitForTurnEnd(page);
    // The failed turn stays as history, without its Retry: only the latest turn has one.
    await expect.poll(() => page.getByRole("button", { name: "Retry" }).count(), { timeout: PATIENCE }).toBe(0);
    await screenshot(page, "conversation-07-retried");
  });
});
