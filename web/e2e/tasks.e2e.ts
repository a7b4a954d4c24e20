// Scheduled tasks in Chromium against the real server and CLI (mock model): create a task,
// see the next run times the server computes, run it now, and open its chat from the
// history.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, startStack, type Stack } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 900 }, timezoneId: "Europe/Berlin" });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "tasks-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("scheduled tasks in the web UI", () => {
  it("creates a task, shows its next runs, runs it now and opens its chat from the history", async () => {
    await page.goto("/");
    await page.getByLabel("Email").fill("planner@example.com");
    await page.getByLabel(/^Password/).fill("a long password");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("button", { name: "Tasks", exact: true }).click();
    await page.waitForURL((url) => url.pathname === "/tasks");
    await page.getByText("No tasks yet.").waitFor();

    await page.getByRole("button", { name: "New task" }).click();
    const form = page.getByRole("form", { name: "New task" });
    await form.getByLabel("Name").fill("Morning summary");
    await form.getByLabel("Prompt").fill("[[text:Summary from the scheduled task.]]");
    await form.getByLabel("Repeats", { exact: true }).selectOption("weekdays");
    await form.getByLabel("Time", { exact: true }).fill("07:30");
    expect(await form.getByLabel("Time zone", { exact: true }).inputValue()).toBe("Europe/Berlin");
    // The next five run times, from the server's preview of this schedule.
    const next = form.getByRole("list", { name: "Next runs" }).getByRole("listitem");
    await next.nth(4).waitFor();
    expect(await next.count()).toBe(5);
    // Shown in the browser's zone, which is the task's here.
    for (const text of await next.allTextContents()) expect(text).toMatch(/\b0?7:30:00\b/);
    // A bad cron expression: the server's reason, not a guess.
    await form.getByLabel("Repeats", { exact: true }).selectOption("cron");
    await form.getByLabel("Cron expression", { exact: true }).fill("61 * * * *");
    await form.getByText(/is not valid/).waitFor();
    await form.getByLabel("Repeats", { exact: true }).selectOption("weekdays");
    await next.nth(4).waitFor();
    await screenshot(page, "70-task-editor");
    await form.getByRole("button", { name: "Create task" }).click();

    const row = page.getByRole("table", { name: "Tasks" }).getByRole("row", { name: /Morning summary/ });
    await row.waitFor();
    expect(await row.textContent()).toContain("Every weekday at 07:30");
    await row.getByRole("button", { name: "Run Morning summary now" }).click();

    const history = page.getByRole("region", { name: "History" });
    const run = history.locator('tr[data-status="completed"]');
    await run.waitFor();
    expect(await run.textContent()).toContain("(manual)");
    await screenshot(page, "71-task-history");
    await run.getByRole("link", { name: "Open chat" }).click();
    await page.waitForURL((url) => url.pathname.startsWith("/chats/"));
    await page.locator("li.message-assistant").getByText("Summary from the scheduled task.").waitFor();
    await page.getByRole("heading", { name: "Morning summary" }).waitFor();
  });
});
