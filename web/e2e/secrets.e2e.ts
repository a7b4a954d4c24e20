// The secrets section of the account settings, against the real server, in Chromium: a
// secret added is listed masked (its value is nowhere on the page), survives a reload, and
// is deleted.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, signUpWithNewChat, startStack, type Stack } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;

const VALUE = "ghp_e2e0123456789secretvalueWXYZ";

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
});
