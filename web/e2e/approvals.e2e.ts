// Approvals, questions, plans and queued follow-ups in the web UI, against the real server,
// the real CLI (its stdio control protocol) and the scripted model, in Chromium.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, startStack, type Stack, sendPrompt, waitForTurnEnd as waitForTurnEndOn, signUpWithNewChat, screenshotIfFailed } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;
const send = (prompt: string) => sendPrompt(page, prompt);
const waitForTurnEnd = () => waitForTurnEndOn(page);
let chatId = "";

function lastTurn(): Locator {
  return page.locator("li.message-assistant").last();
}

/** A file of the chat's workspace, read through the files API with the page's session. */
async function workspaceFile(path: string): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async ([chat, file]) => {
      const stored = JSON.parse(localStorage.getItem("agentbox.session") ?? "{}") as { state?: { session?: { accessToken?: string } } };
      const response = await fetch(`/api/v1/chats/${chat}/files/content?path=${encodeURIComponent(file ?? "")}`, {
        headers: { authorization: `Bearer ${stored.state?.session?.accessToken ?? ""}` },
      });
      return { status: response.status, text: await response.text() };
    },
    [chatId, path] as const,
  );
}

async function setMode(label: string): Promise<void> {
  // The change is saved on the chat before the next turn starts.
  const saved = page.waitForResponse((r) => r.url().includes(`/api/v1/chats/${chatId}`) && r.request().method() === "PATCH");
  await page.getByRole("combobox", { name: "Mode", exact: true }).selectOption({ label });
  await saved;
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  chatId = await signUpWithNewChat(page, "approver@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "approvals-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("approvals in the web UI", () => {
  it("approves a tool call: it runs and its file is in the workspace", async () => {
    await setMode("Ask");
    await send("[[write:approved.txt:yes-approved]] write it");
    const card = page.getByRole("region", { name: "Allow Bash?" });
    await card.waitFor();
    await card.getByText("approved.txt").first().waitFor();
    // The call's own card says it waits for the answer, not that it runs.
    await lastTurn().locator('[data-tool="Bash"]').getByText("waiting for you", { exact: true }).waitFor();
    // The chat waits for the user: the list and the tab title say so.
    await page.locator(".chat-item.active .status-waiting").waitFor();
    await page.waitForFunction(() => document.title.startsWith("(1)"));
    expect((await workspaceFile("approved.txt")).status).toBe(404);
    await screenshot(page, "40-permission-request");
    await card.getByRole("button", { name: "Approve" }).click();
    await card.getByRole("status").filter({ hasText: "Approved" }).waitFor();
    await waitForTurnEnd();
    expect(await lastTurn().locator('[data-tool="Bash"].tool-completed').count()).toBe(1);
    expect(await workspaceFile("approved.txt")).toEqual({ status: 200, text: "yes-approved" });
    await page.waitForFunction(() => !document.title.startsWith("("));
  });

  it("denies another with a message: nothing runs and the agent is told why", async () => {
    await send("[[write:denied.txt:no]] write this too");
    const card = page.getByRole("region", { name: "Allow Bash?" }).last();
    await card.getByRole("button", { name: "Deny…" }).click();
    await card.getByLabel("Reason for denying").fill("not this file");
    await card.getByRole("button", { name: "Deny", exact: true }).click();
    await card.getByRole("status").filter({ hasText: /Denied.*not this file/ }).waitFor();
    await waitForTurnEnd();
    expect((await workspaceFile("denied.txt")).status).toBe(404);
    // Still one card each after a reload: the outcome is part of the conversation.
    await page.reload();
    await page.locator(".connection-live").waitFor();
    await page.getByRole("status").filter({ hasText: /Denied.*not this file/ }).waitFor();
    expect(await page.getByRole("region", { name: "Allow Bash?" }).count()).toBe(2);
  });

  it("answers a question with a small form", async () => {
    await send("[[ask]] which one?");
    const card = page.getByRole("region", { name: "The agent asks" });
    await card.getByText("Which color?").waitFor();
    await card.getByLabel(/blue/).check();
    await screenshot(page, "41-question");
    await card.getByRole("button", { name: "Answer" }).click();
    await card.getByRole("status").filter({ hasText: "Which color?: blue" }).waitFor();
    await waitForTurnEnd();
    // The CLI ran the tool with the answer; its result names it.
    await lastTurn().locator('[data-tool="AskUserQuestion"] summary').click();
    await lastTurn().locator('[data-tool="AskUserQuestion"] .tool-output').filter({ hasText: "blue" }).waitFor();
  });

  it("shows a plan and continues in the chosen mode once approved", async () => {
    await setMode("Plan");
    await send("[[exitplan]] [[write:plan.txt:built]] plan it");
    const card = page.getByRole("region", { name: "The agent proposes a plan" });
    await card.getByText("Write plan.txt").waitFor();
    expect((await workspaceFile("plan.txt")).status).toBe(404);
    await card.getByLabel("Mode after the plan").selectOption({ label: "Bypass" });
    await screenshot(page, "42-plan");
    await card.getByRole("button", { name: "Approve plan" }).click();
    await card.getByRole("status").filter({ hasText: "continuing in Bypass mode" }).waitFor();
    await waitForTurnEnd();
    expect(await workspaceFile("plan.txt")).toEqual({ status: 200, text: "built" });
    expect(await page.getByRole("combobox", { name: "Mode", exact: true }).inputValue()).toBe("bypassPermissions");
  });

  it("queues follow-ups written during a turn and runs them in order", async () => {
    await send("[[sleep:10]] [[text:first done]]");
    await page.getByRole("button", { name: "Stop the running turn" }).waitFor();
    await send("[[text:second done]] second");
    const queue = page.getByRole("region", { name: "Queued prompts" });
    await queue.locator(".queue-item").first().waitFor();
    await send("[[text:third done]] third");
    await queue.locator(".queue-item").nth(1).waitFor();
    expect(await queue.locator(".queue-prompt").allTextContents()).toEqual(["[[text:second done]] second", "[[text:third done]] third"]);
    // Edit the second one before it runs.
    await queue.locator(".queue-item").nth(1).getByRole("button", { name: "Edit" }).click();
    await queue.getByLabel("Edit the queued prompt").fill("[[text:third edited]] third");
    await queue.getByRole("button", { name: "Save" }).click();
    await queue.locator(".queue-prompt").filter({ hasText: "third edited" }).waitFor();
    await screenshot(page, "43-queue");
    // In the conversation: the chat list's preview shows the same words.
    await page.getByRole("list", { name: "Conversation" }).getByText("third edited", { exact: true }).waitFor();
    await queue.waitFor({ state: "detached" });
    await waitForTurnEnd();
    const texts = await page.locator("li.message-assistant .block-text").allTextContents();
    const order = ["first done", "second done", "third edited"].map((t) => texts.findIndex((x) => x.includes(t)));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
});
