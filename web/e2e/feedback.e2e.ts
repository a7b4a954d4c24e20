// Recoverable failures and live feedback in the conversation (issue 15, items 4, 6 and 7),
// against the real server, the real CLI and the scripted model, in Chromium: Copy and Edit
// of an earlier prompt, advice for a wrong key, a running turn's activity and clock, Esc to
// stop it, a request answered from the keyboard, the egress proxy's refusal in words, a path
// on a card opening the editor, and "Restore to here".
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, sendPrompt, signUpWithNewChat, startStack, type Stack, waitForTurnEnd } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;

const conversation = () => page.getByRole("list", { name: "Conversation" });
const lastTurn = () => page.locator("li.message-assistant").last();

/** Sends a prompt and waits for its reply to be shown and its turn to end. */
async function turn(prompt: string, reply: string): Promise<void> {
  await sendPrompt(page, prompt);
  await lastTurn().getByText(reply).waitFor();
  await waitForTurnEnd(page);
}

async function newChat(): Promise<void> {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.getByText("Start the conversation").waitFor();
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: stack.base });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  await signUpWithNewChat(page, "feedback@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "feedback-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("editing a prompt", () => {
  it("copies a prompt, and edits an earlier one: the later turns go, the edited prompt runs", async () => {
    await turn("first prompt [[text:reply one]]", "reply one");
    await turn("second prompt [[text:reply two]]", "reply two");
    await turn("third prompt [[text:reply three]]", "reply three");

    const prompts = page.locator("li.message-user");
    // Nothing comes before the first prompt to go back to.
    expect(await prompts.nth(0).getByRole("button", { name: "Edit the prompt" }).isDisabled()).toBe(true);

    await prompts.nth(1).getByRole("button", { name: "Copy the prompt" }).click();
    await prompts.nth(1).getByText("Copied").waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe("second prompt [[text:reply two]]");

    await prompts.nth(1).getByRole("button", { name: "Edit the prompt" }).click();
    await page.getByRole("textbox", { name: "Edited prompt" }).fill("second prompt, better [[text:reply edited]]");
    await page.getByRole("button", { name: "Send edited prompt" }).click();
    const dialog = page.getByRole("dialog", { name: "Edit this prompt and run it again?" });
    await dialog.waitFor();
    await screenshot(page, "feedback-01-edit-confirm");
    await dialog.getByRole("button", { name: "Restore and send" }).click();

    await conversation().getByText("reply edited").waitFor();
    await waitForTurnEnd(page);
    await expect.poll(() => conversation().getByText("reply two", { exact: true }).count(), { timeout: PATIENCE }).toBe(0);
    expect(await conversation().getByText("reply three", { exact: true }).count()).toBe(0);
    expect(await conversation().getByText("reply one", { exact: true }).count()).toBe(1);
    await screenshot(page, "feedback-02-edited");
  });
});

describe("model errors", () => {
  it("says a 401 is the server's key and where to set it", async () => {
    await newChat();
    await sendPrompt(page, "[[error:401]] anything");
    const alert = lastTurn().getByRole("alert");
    await alert.getByText("The model API refused the key.").waitFor();
    expect(await alert.textContent()).toContain("ANTHROPIC_API_KEY");
    await waitForTurnEnd(page);
    expect(await lastTurn().locator(".usage").count()).toBe(0);
    await screenshot(page, "feedback-03-401");
  });
});

describe("a running turn", () => {
  it("says what it does and for how long, stops on Esc, and announces the end", async () => {
    await newChat();
    await sendPrompt(page, "[[sleep:60]] wait a minute");
    const progress = lastTurn().locator(".turn-progress");
    await progress.getByText(/^Running `python3 -c 'import time; time\.sleep\(60\)/).waitFor();
    await progress.locator(".turn-elapsed").getByText(/^0:0[1-9]|^0:[1-5]\d/).waitFor();
    await screenshot(page, "feedback-04-running");
    // Esc in the composer (where the focus is) stops the turn.
    await page.getByRole("textbox", { name: "Prompt" }).press("Escape");
    await page.locator("li.message-assistant.status-interrupted").waitFor();
    await waitForTurnEnd(page);
    await page.getByRole("log", { name: "Replies" }).getByText("The turn was stopped.").waitFor();
  });

  it("offers to jump to the latest when scrolled up", async () => {
    await newChat();
    await sendPrompt(page, "[[long:30000]] a long reply");
    await page.locator("li.message-assistant.status-completed").waitFor();
    await waitForTurnEnd(page);
    const scroller = page.locator(".conversation");
    await scroller.evaluate((element) => {
      element.scrollTop = 0;
    });
    const jump = page.getByRole("button", { name: "↓ Jump to latest" });
    await jump.click();
    await jump.waitFor({ state: "detached" });
    await expect
      .poll(() => scroller.evaluate((element) => element.scrollHeight - element.scrollTop - element.clientHeight), { timeout: PATIENCE })
      .toBeLessThan(80);
  });

  it("answers a focused request from the keyboard, and names the host the egress proxy refused", async () => {
    await newChat();
    // Network commands ask first in `auto` mode.
    await sendPrompt(page, "[[bash:curl -sS https://example.com/]] fetch it");
    const request = lastTurn().getByRole("region", { name: "Allow Bash?" });
    await request.waitFor();
    await lastTurn().getByText("Waiting for your answer…").waitFor();
    await request.focus();
    await request.press("a");
    const card = lastTurn().locator("details.tool-card[data-tool=Bash]");
    await card.getByText("host not allowed").waitFor();
    const note = card.getByRole("note");
    expect(await note.textContent()).toContain("example.com");
    await screenshot(page, "feedback-05-egress");
    await note.getByRole("button", { name: "Allow it in Settings" }).click();
    const settings = page.getByRole("dialog", { name: /Settings/ });
    await settings.waitFor();
    await page.keyboard.press("Escape");
    await settings.waitFor({ state: "hidden" });
    await waitForTurnEnd(page);
  });
});

describe("from the conversation into the workspace", () => {
  it("opens the panel on the first file change, opens a card's path in the editor, and restores to a turn", async () => {
    await newChat();
    expect(await page.getByRole("button", { name: "Workspace panel", exact: true }).getAttribute("aria-pressed")).toBe("false");
    await turn('[[tool:Write:{"file_path":"/home/user/notes/hello.txt","content":"hello from the agent\\n"}]] [[text:wrote it]]', "wrote it");
    // A wide screen: the panel opened by itself, on its files.
    await page.getByRole("tab", { name: "Files", selected: true }).waitFor();
    expect(await page.getByRole("button", { name: "Workspace panel", exact: true }).getAttribute("aria-pressed")).toBe("true");
    // The tree shows the user's work; the CLI's own files only when asked.
    const tree = page.getByRole("tree", { name: "Files" });
    await tree.getByRole("treeitem", { name: /notes/ }).waitFor();
    expect(await tree.getByRole("treeitem", { name: /^\.claude/ }).count()).toBe(0);
    await page.getByRole("button", { name: "Show the CLI's files" }).click();
    await tree.getByRole("treeitem", { name: /^\.claude$/ }).waitFor();
    await page.getByRole("button", { name: "Show the CLI's files" }).click();
    await tree.getByRole("treeitem", { name: /^\.claude$/ }).waitFor({ state: "detached" });
    await screenshot(page, "feedback-06-files-opened");
    await page.getByRole("tab", { name: "Terminal", exact: true }).click();

    const card = lastTurn().locator("details.tool-card[data-tool=Write]");
    await card.locator("summary").click();
    await card.getByRole("button", { name: "/home/user/notes/hello.txt" }).click();
    const editor = page.getByRole("region", { name: /^Editor: (notes\/)?hello\.txt$/ });
    await editor.locator(".cm-content").getByText("hello from the agent").waitFor();
    await screenshot(page, "feedback-07-path-opened");

    await turn("[[bash:rm notes/hello.txt]] [[text:removed it]]", "removed it");
    await page.locator("li.message-assistant").first().getByRole("button", { name: "Restore to here" }).click();
    const dialog = page.getByRole("dialog", { name: "Restore to here?" });
    await dialog.getByRole("button", { name: "Restore" }).click();
    await expect.poll(() => conversation().getByText("removed it").count(), { timeout: PATIENCE }).toBe(0);
    await page.locator(".notice-block").getByText(/Restored the checkpoint of this turn/).waitFor();
    // The timeline says in words what each checkpoint changed.
    await page.getByRole("tab", { name: "Checkpoints", exact: true }).click();
    await page.locator(".checkpoint-changes").first().getByText(/files? (changed|added|deleted)/).waitFor();
    await screenshot(page, "feedback-08-restored");
  });
});
