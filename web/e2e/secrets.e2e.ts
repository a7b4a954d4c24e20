// The secrets sections against the real server, in Chromium: a secret added in the account
// settings is listed masked (its value is nowhere on the page), survives a reload, and is
// deleted; a chat's override added in the chat settings likewise, without touching the
// account's secrets.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, signUpWithNewChat, startStack, type Stack } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;

const VALUE = "ghp_e2e0123456789secretvalueWXYZ";
const CHAT_VALUE = "npm_chatonly0123456789overrideQRST";

async function openSecrets(): Promise<Locator> {
  await page.getByRole("button", { name: "Settings", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: "Settings" });
  await dialog.getByRole("heading", { name: "Secrets" }).waitFor();
  return dialog;
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  await signUpWithNewChat(page, "secrets@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "secrets-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("secrets in the web UI", () => {
  it("adds a secret, shows it masked across a reload, and deletes it", async () => {
    let dialog = await openSecrets();
    await dialog.getByText("No secrets yet.").waitFor();
    await dialog.getByLabel("Secret name").fill("GITHUB_TOKEN");
    await dialog.getByLabel("Secret value").fill(VALUE);
    await dialog.getByRole("button", { name: "Save secret" }).click();
    const masked = dialog.getByLabel("Value of GITHUB_TOKEN");
    await masked.waitFor();
    expect(await masked.textContent()).toBe("ghp…WXYZ");
    expect(await page.content()).not.toContain(VALUE);
    await screenshot(page, "60-secrets");

    await page.reload();
    dialog = await openSecrets();
    await dialog.getByLabel("Value of GITHUB_TOKEN").waitFor();
    expect(await page.content()).not.toContain(VALUE);

    await dialog.getByRole("button", { name: "Delete GITHUB_TOKEN" }).click();
    await dialog.getByText("No secrets yet.").waitFor();
  });

  it("adds a chat's override in the chat settings, shows it masked, and deletes it", async () => {
    // The account settings are still open from the test before.
    await page.getByRole("dialog", { name: "Settings" }).getByRole("button", { name: "Close" }).click();
    await page.getByRole("button", { name: "Chat settings" }).click();
    const dialog = page.getByRole("dialog", { name: "Chat settings" });
    const section = dialog.getByRole("region", { name: "Secrets for this chat" });
    await section.getByText("No secrets for this chat: it uses your account’s.").waitFor();
    await section.getByText(/override your account’s secrets of the same name, in this chat only/).waitFor();
    await section.getByLabel("Secret name").fill("NPM_TOKEN");
    await section.getByLabel("Secret value").fill(CHAT_VALUE);
    await section.getByRole("button", { name: "Save secret" }).click();
    const masked = section.getByRole("list", { name: "Secrets for this chat" }).getByLabel("Value of NPM_TOKEN");
    await masked.waitFor();
    expect(await masked.textContent()).toBe("npm…QRST");
    expect(await page.content()).not.toContain(CHAT_VALUE);
    await screenshot(page, "61-chat-secrets");

    // The override is the chat's alone: the account's list does not have it.
    await dialog.getByRole("button", { name: "Close" }).click();
    const account = await openSecrets();
    await account.getByText("No secrets yet.").waitFor();
    await account.getByRole("button", { name: "Close" }).click();

    // It survives a reload and is deleted from the chat settings.
    await page.reload();
    await page.getByRole("button", { name: "Chat settings" }).click();
    await section.getByLabel("Value of NPM_TOKEN").waitFor();
    expect(await page.content()).not.toContain(CHAT_VALUE);
    await section.getByRole("button", { name: "Delete NPM_TOKEN" }).click();
    await section.getByText("No secrets for this chat: it uses your account’s.").waitFor();
  });
});
