// The phone (390×760): the workspace panel as a bottom sheet that closes with its button, with
// Escape and on switching chats; a request arriving while the sheet is open shows on the
// panel's button and in a strip above the sheet that leads to it; the composer's bar in one
// row. Against the real server, CLI and sandbox, with the scripted model; both themes pictured.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, sendPrompt, signUpWithNewChat, startStack, waitForTurnEnd, type Stack } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;
let first = "";
let second = "";

const sheet = (): Locator => page.getByRole("complementary", { name: "Workspace" });
const toggle = (): Locator => page.getByRole("button", { name: "Workspace panel", exact: true });
const strip = (): Locator => page.getByRole("button", { name: /Waiting for your answer/ });

/** Opens another chat from the drawer, the way a phone's user does. */
async function switchTo(chatId: string): Promise<void> {
  await page.getByRole("button", { name: "Show chats" }).click();
  await page.locator(`a.chat-link[href="/chats/${chatId}"]`).click();
  await page.waitForURL((url) => url.pathname === `/chats/${chatId}`);
  await page.locator(".connection-live").waitFor();
  // The chat list slides away (a short transition) before anything is looked at.
  await page.waitForFunction(() => (document.querySelector(".sidebar")?.getBoundingClientRect().right ?? 0) <= 0);
}

async function openSheet(): Promise<void> {
  await toggle().click();
  await sheet().getByRole("tab", { name: "Terminal", exact: true }).waitFor();
}

beforeAll(async () => {
  stack = await startStack();
  // Signed up and given two chats on a wide screen (where "+ New chat" is in sight), then a phone.
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  second = await signUpWithNewChat(page, "phone@example.com");
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.waitForURL((url) => url.pathname.startsWith("/chats/") && !url.pathname.endsWith(second));
  first = new URL(page.url()).pathname.split("/").pop() ?? "";
  await page.setViewportSize({ width: 390, height: 760 });
  await page.locator(".connection-live").waitFor();
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "phone-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("the web UI on a phone", () => {
  it("opens the workspace as a sheet under the header, and closes it by its button and by Escape", async () => {
    await openSheet();
    const box = await sheet().boundingBox();
    const header = await page.locator(".chat-header").boundingBox();
    // A sheet from the bottom edge, the header (and its button) still in sight above it.
    expect(box && header && Math.round(box.y + box.height) === 760 && box.y >= header.y + header.height && box.width === 390).toBe(true);
    expect(await toggle().isVisible()).toBe(true);
    await screenshot(page, "90-phone-sheet");
    await sheet().getByRole("button", { name: "Close the workspace panel" }).click();
    await sheet().waitFor({ state: "detached" });
    await openSheet();
    // Escape in a terminal is the shell's (vi, less); from the sheet's own controls it closes it.
    await sheet().getByRole("tab", { name: "Files", exact: true }).click();
    await sheet().getByRole("tab", { name: "Files", exact: true, selected: true }).waitFor();
    await page.keyboard.press("Escape");
    await sheet().waitFor({ state: "detached" });
    // The next opening shows the last tab again.
    await toggle().click();
    await sheet().getByRole("tab", { name: "Files", exact: true, selected: true }).waitFor();
    // Left on Files: every opening on the Terminal tab starts a shell, and a chat has a few.
    await sheet().getByRole("button", { name: "Close the workspace panel" }).click();
    await sheet().waitFor({ state: "detached" });
  });

  it("closes the sheet on switching chats, and does not carry it back", async () => {
    await openSheet();
    await switchTo(second);
    expect(await sheet().count()).toBe(0);
    expect(await toggle().getAttribute("aria-pressed")).toBe("false");
    await switchTo(first);
    expect(await sheet().count()).toBe(0);
  });

  it("keeps a request that arrives while the sheet is open in sight: a badge and a strip that leads to it", async () => {
    const saved = page.waitForResponse((r) => r.url().endsWith(`/api/v1/chats/${first}`) && r.request().method() === "PATCH");
    await page.getByRole("combobox", { name: "Mode", exact: true }).selectOption({ label: "Ask" });
    await saved;
    await openSheet();
    // Typed into the composer under the sheet; the request comes while the sheet covers the chat.
    await sendPrompt(page, "[[write:phone.txt:from-the-phone]] write it");
    await toggle().locator(".workspace-badge").filter({ hasText: "1" }).waitFor();
    await strip().waitFor();
    // The strip sits above the sheet, between it and the header.
    const stripBox = await strip().boundingBox();
    const sheetBox = await sheet().boundingBox();
    expect(stripBox && sheetBox && stripBox.y + stripBox.height <= sheetBox.y && stripBox.y > 0).toBe(true);
    await screenshot(page, "91-phone-request-over-sheet");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
    await screenshot(page, "92-phone-request-over-sheet-dark");
    await page.emulateMedia({ colorScheme: "light" });
    await page.waitForFunction(() => document.documentElement.dataset.theme === "light");

    // The strip puts the sheet away and brings the request into view.
    await strip().click();
    await sheet().waitFor({ state: "detached" });
    const card = page.getByRole("region", { name: "Allow Bash?" });
    await page.waitForFunction(() => {
      const box = document.querySelector(".permission-card.waiting")?.getBoundingClientRect();
      const composer = document.querySelector(".composer")?.getBoundingClientRect();
      return !!box && !!composer && box.top >= 52 && box.bottom <= composer.top;
    });
    // With the sheet closed the strip stays, above the composer.
    await strip().waitFor();

    // A running turn's composer bar (model, mode, Stop, Queue) is one row.
    const bar = await page.locator(".composer-bar").boundingBox();
    const send = await page.getByRole("button", { name: "Queue" }).boundingBox();
    expect(bar && send && bar.height < send.height * 1.6).toBe(true);
    expect(bar && bar.x + bar.width <= 390).toBe(true);
    await screenshot(page, "93-phone-request-strip");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
    await screenshot(page, "94-phone-request-strip-dark");
    await page.emulateMedia({ colorScheme: "light" });

    await card.getByRole("button", { name: "Approve" }).click();
    await waitForTurnEnd(page);
    await strip().waitFor({ state: "detached" });
    expect(await toggle().locator(".workspace-badge").count()).toBe(0);
    // An idle composer's bar (model, mode, Send) is one row too.
    const idle = await page.locator(".composer-bar").boundingBox();
    const sendBox = await page.getByRole("button", { name: "Send" }).boundingBox();
    expect(idle && sendBox && idle.height < sendBox.height * 1.6).toBe(true);
  });

  it("wraps long lines in the editor", async () => {
    await sendPrompt(page, `[[write:long.txt:${"word ".repeat(60)}end]] a long line`);
    // The chat is still in the Ask mode.
    await page.getByRole("region", { name: "Allow Bash?" }).last().getByRole("button", { name: "Approve" }).click();
    await waitForTurnEnd(page);
    await openSheet();
    await sheet().getByRole("tab", { name: "Files", exact: true }).click();
    await sheet().getByRole("treeitem").filter({ has: page.locator(".tree-name", { hasText: /^long\.txt$/ }) }).click();
    const content = sheet().locator(".cm-content");
    await content.waitFor();
    expect(await content.getAttribute("class")).toContain("cm-lineWrapping");
    // One line of text shown on several rows, none wider than the phone.
    const line = await sheet().locator(".cm-line").first().boundingBox();
    expect(line && line.height > 40 && line.x + line.width <= 390).toBe(true);
    await screenshot(page, "95-phone-editor-wrapped");
  });
});
