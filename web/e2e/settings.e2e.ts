// The settings dialogs in the web UI, against the real server, the real CLI and the scripted
// model, in Chromium: the user's instructions and allowed hosts, a chat's instructions and
// thinking budget (kept across a reload), and an "always allow" rule seen and removed.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, sendPrompt, startStack, type Stack, waitForTurnEnd, signUpWithNewChat, screenshotIfFailed } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;
let chatId = "";

const accountDialog = (): Locator => page.getByRole("dialog", { name: "Settings" });
const chatDialog = (): Locator => page.getByRole("dialog", { name: "Chat settings" });

async function openAccountSettings(): Promise<Locator> {
  await page.getByRole("button", { name: "Settings", exact: true }).click();
  const dialog = accountDialog();
  await dialog.getByLabel(/Custom instructions/).waitFor();
  return dialog;
}

async function openChatSettings(): Promise<Locator> {
  await page.getByRole("button", { name: "Chat settings" }).click();
  const dialog = chatDialog();
  await dialog.getByLabel(/Instructions for this chat/).waitFor();
  return dialog;
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  chatId = await signUpWithNewChat(page, "settings@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "settings-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("settings in the web UI", () => {
  it("keeps the user's instructions and a chat's instructions and thinking budget across a reload", async () => {
    let dialog = await openAccountSettings();
    // Focus moves into the dialog.
    expect(await dialog.getByLabel(/Custom instructions/).evaluate((el) => el === document.activeElement)).toBe(true);
    await dialog.getByLabel(/Custom instructions/).fill("Answer in one sentence.");
    await dialog.getByRole("button", { name: "Save instructions" }).click();
    await dialog.getByRole("status").filter({ hasText: "Saved." }).waitFor();
    await screenshot(page, "30-account-settings");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });

    dialog = await openChatSettings();
    await dialog.getByLabel(/Instructions for this chat/).fill("Write files in French.");
    await dialog.getByLabel(/Thinking budget/).selectOption({ label: "16k tokens" });
    await dialog.getByText("Changes apply from the chat’s next turn.").waitFor();
    await dialog.getByRole("button", { name: "Save", exact: true }).click();
    await dialog.getByRole("status").filter({ hasText: "Saved." }).waitFor();
    await screenshot(page, "31-chat-settings");
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "hidden" });
    // Focus goes back to the gear that opened it.
    expect(await page.getByRole("button", { name: "Chat settings" }).evaluate((el) => el === document.activeElement)).toBe(true);

    await page.reload();
    await page.locator(".connection-live").waitFor();
    dialog = await openAccountSettings();
    expect(await dialog.getByLabel(/Custom instructions/).inputValue()).toBe("Answer in one sentence.");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    dialog = await openChatSettings();
    expect(await dialog.getByLabel(/Instructions for this chat/).inputValue()).toBe("Write files in French.");
    expect(await dialog.getByLabel(/Thinking budget/).inputValue()).toBe("16384");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
  });

  it("refuses an invalid host with the server's reason and saves a valid one", async () => {
    let dialog = await openAccountSettings();
    const input = dialog.getByLabel("Host to allow");
    await input.fill("bad host!");
    await dialog.getByRole("button", { name: "Add", exact: true }).click();
    await dialog.getByRole("alert").filter({ hasText: "bad host!" }).waitFor();
    await screenshot(page, "32-invalid-host");
    await input.fill("registry.npmjs.org");
    await dialog.getByRole("button", { name: "Add", exact: true }).click();
    await dialog.getByRole("list", { name: "Allowed hosts" }).getByText("registry.npmjs.org").waitFor();
    expect(await dialog.getByRole("alert").count()).toBe(0);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });

    await page.reload();
    await page.locator(".connection-live").waitFor();
    dialog = await openAccountSettings();
    await dialog.getByRole("list", { name: "Allowed hosts" }).getByText("registry.npmjs.org").waitFor();
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
  });

  it("lists an always-allow rule made on a request card and removes it", async () => {
    const saved = page.waitForResponse((r) => r.url().endsWith(`/api/v1/chats/${chatId}`) && r.request().method() === "PATCH");
    await page.getByRole("combobox", { name: "Mode", exact: true }).selectOption({ label: "Ask" });
    await saved;
    await sendPrompt(page, "[[write:a.txt:x]] go");
    const card = page.getByRole("region", { name: "Allow Bash?" });
    await card.getByRole("button", { name: "Always allow" }).click();
    await waitForTurnEnd(page);

    const dialog = await openChatSettings();
    const rules = dialog.getByRole("list", { name: "Always allow rules" });
    await rules.getByRole("listitem").first().waitFor();
    expect(await rules.getByRole("listitem").count()).toBe(1);
    expect(await rules.textContent()).toContain("Bash");
    await screenshot(page, "33-chat-rules");
    await rules.getByRole("button", { name: /^Remove / }).click();
    await dialog.getByText("No rules yet: choose Always allow on a request.").waitFor();
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
  });

  it("starts a chat from the home screen's composer with the user's default model and mode", async () => {
    const dialog = await openAccountSettings();
    // The model picker names the models; the server's default is said.
    await dialog.getByLabel("Default model", { exact: true }).locator("option", { hasText: /^Server default \(/ }).waitFor({ state: "attached" });
    await dialog.getByLabel("Default model", { exact: true }).selectOption({ label: "Opus 4.1" });
    await page.waitForResponse((r) => r.url().endsWith("/api/v1/settings") && r.request().method() === "PATCH" && r.ok());
    await dialog.getByLabel("Default mode", { exact: true }).selectOption("plan");
    await page.waitForResponse((r) => r.url().endsWith("/api/v1/settings") && r.request().method() === "PATCH" && r.ok());
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });

    await page.goto("/");
    const home = page.getByRole("form", { name: "Start a chat" });
    await home.waitFor();
    expect(await home.getByLabel("Model", { exact: true }).inputValue()).toBe("claude-opus-4-1");
    expect(await home.getByLabel("Mode", { exact: true }).inputValue()).toBe("plan");
    // The earlier chat is listed under the box.
    await page.getByRole("region", { name: "Recent chats" }).getByRole("link").first().waitFor();
    await screenshot(page, "36-home-composer");
    // A different mode picked here is this chat's, not a new default.
    await home.getByLabel("Mode", { exact: true }).selectOption("ask");
    const box = home.getByRole("textbox", { name: "First prompt" });
    await box.fill("[[text:Started from the home screen.]]");
    await box.press("Enter");
    await page.waitForURL((url) => url.pathname.startsWith("/chats/") && !url.pathname.endsWith(chatId));
    await page.locator("li.message-assistant").filter({ hasText: "Started from the home screen." }).first().waitFor();
    await waitForTurnEnd(page);
    const composer = page.locator("form.composer");
    expect(await composer.getByLabel("Model", { exact: true }).inputValue()).toBe("claude-opus-4-1");
    expect(await composer.getByLabel("Mode", { exact: true }).inputValue()).toBe("ask");

    // The box is empty again for the next chat, which starts in the default mode again.
    await page.goto("/");
    await page.getByRole("form", { name: "Start a chat" }).waitFor();
    expect(await page.getByRole("textbox", { name: "First prompt" }).inputValue()).toBe("");
    expect(await page.getByRole("form", { name: "Start a chat" }).getByLabel("Mode", { exact: true }).inputValue()).toBe("plan");
    await page.goBack();
    await page.locator("li.message-assistant").filter({ hasText: "Started from the home screen." }).first().waitFor();
  });

  it("fits a phone's width", async () => {
    await page.setViewportSize({ width: 390, height: 760 });
    const dialog = await openChatSettings();
    const box = await dialog.boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 390).toBe(true);
    await screenshot(page, "34-chat-settings-phone");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
    await screenshot(page, "35-chat-settings-phone-dark");
    await page.emulateMedia({ colorScheme: "light" });
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
  });
});
