// The workspace panels against the real server, the real CLI and the scripted model, in
// Chromium: terminals in the chat's sandbox (run, reattach, reconnect, tabs), the sandbox's
// status and its restart, and the files (tree, editor, upload, download, new, rename, delete). The steps build
// on each other (one account, one chat, one browser), so they run in order.
import { readFileSync } from "node:fs";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, startStack, type Stack, sendPrompt, signUpWithNewChat, screenshotIfFailed } from "./support";

let stack: Stack;
let context: BrowserContext;
let page: Page;
const send = (prompt: string) => sendPrompt(page, prompt);

/** The terminal tab on show. */
function terminal(): Locator {
  return page.locator(".terminal-view:not([hidden])");
}

/** The shown terminal's screen, one trimmed string per row. */
async function screen(): Promise<string[]> {
  return terminal()
    .locator(".xterm-rows > div")
    .evaluateAll((rows) => rows.map((row) => (row.textContent ?? "").replace(/\u00a0/g, " ").trimEnd()));
}

/** Waits until a row of the shown terminal is exactly `line` (output, not the typed command). */
async function waitForLine(line: string, count = 1): Promise<void> {
  const deadline = Date.now() + PATIENCE;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await screen();
    if (last.filter((row) => row.trim() === line).length >= count) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`the terminal never showed the line ${JSON.stringify(line)}; it shows:\n${last.join("\n")}`);
}

async function waitForTerminal(status = "open"): Promise<void> {
  await page.locator(`.terminal-view:not([hidden])[data-status="${status}"]`).waitFor();
}

/** Types a command into the shown terminal and presses Enter. */
async function run(command: string): Promise<void> {
  await terminal().locator(".terminal-host").click();
  await page.keyboard.type(command);
  await page.keyboard.press("Enter");
}

function treeItem(name: string): Locator {
  return page.getByRole("treeitem").filter({ has: page.locator(".tree-name", { hasText: new RegExp(`^${name.replace(/\./g, "\\.")}$`) }) });
}

async function showTab(name: "Terminal" | "Files" | "Checkpoints"): Promise<void> {
  await page.getByRole("tab", { name, exact: true }).click();
}

beforeAll(async () => {
  stack = await startStack();
  context = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1400, height: 860 }, acceptDownloads: true });
  context.setDefaultTimeout(PATIENCE);
  page = await context.newPage();
  await signUpWithNewChat(page, "workspace@example.com");
});

afterEach(async (test) => {
  await screenshotIfFailed(page, "failed-workspace", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

describe("the workspace panels", () => {
  it("runs echo hello in a terminal and shows the sandbox's status", async () => {
    await page.getByRole("button", { name: "Workspace panel" }).click();
    await page.getByRole("tab", { name: "Terminal", exact: true, selected: true }).waitFor();
    await waitForTerminal();
    await run("echo hello");
    await waitForLine("hello");
    const status = page.locator('.sandbox-status[data-status="running"]');
    await status.waitFor();
    expect(await status.textContent()).toMatch(/Sandbox: Running.*isolated \(local\)/);
    await screenshot(page, "10-terminal");
  });

  it("reattaches to the same shell after a reload, with its screen", async () => {
    await run("export MARK=kept-$((40 + 2))");
    await page.reload();
    await waitForTerminal();
    // The server replays the shell's recent output: the earlier line is back.
    await waitForLine("hello");
    await run("echo $MARK");
    await waitForLine("kept-42");
  });

  it("reconnects by itself after the network drops", async () => {
    await context.setOffline(true);
    await page.locator('.terminal-view:not([hidden]):not([data-status="open"])').waitFor();
    await context.setOffline(false);
    await waitForTerminal();
    // It came back to the same shell (the server said "reconnected"), not to a new one.
    await terminal().getByText("Reconnected to the same shell.").waitFor();
    await run("echo again-$MARK");
    await waitForLine("again-kept-42");
  });

  it("opens more terminals in tabs, each with a shell of its own", async () => {
    await page.getByRole("button", { name: "New terminal" }).click();
    await page.getByRole("tab", { name: "Terminal 2", selected: true }).waitFor();
    await waitForTerminal();
    await run('echo "mark=[$MARK]"');
    await waitForLine("mark=[]");
    // When its shell exits the tab says so, and Enter starts a new one.
    await run("exit 3");
    await waitForTerminal("exited");
    await terminal().locator(".terminal-status").getByText("The shell exited (code 3).").waitFor();
    await waitForLine("[The shell exited (code 3). Press Enter to start a new one.]");
    await page.keyboard.press("Enter");
    await waitForTerminal();
    await run("echo fresh-shell");
    await waitForLine("fresh-shell");
    await page.getByRole("button", { name: "Close Terminal 2" }).click();
    await page.getByRole("tab", { name: "Terminal 1", selected: true }).waitFor();
    expect(await page.getByRole("tab", { name: "Terminal 2" }).count()).toBe(0);
    await waitForLine("kept-42");
  });

  it("refreshes the file tree while the agent writes a file", async () => {
    await showTab("Files");
    await page.getByRole("tree", { name: "Files" }).or(page.getByText("The workspace is empty")).first().waitFor();
    expect(await treeItem("f.txt").count()).toBe(0);
    // The file tool's completion refreshes the tree while the turn still runs.
    await send("[[write:f.txt:x]] [[sleep:8]] [[text:wrote it]]");
    await treeItem("f.txt").waitFor();
    expect(await page.locator('li.message-assistant[aria-busy="true"]').count()).toBe(1);
    // The reply itself: the prompt (in its bubble and the chat list's preview) holds the words too.
    await page.locator("li.message-assistant").getByText("wrote it", { exact: true }).waitFor();
    await page.getByRole("button", { name: "Send" }).waitFor();
  });

  it("edits a file in the editor, saves it, and cat shows it in the terminal", async () => {
    await treeItem("f.txt").click();
    const editor = page.getByRole("region", { name: "Editor: f.txt" });
    const content = editor.locator(".cm-content");
    await content.filter({ hasText: "x" }).waitFor();
    await content.click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("\nedited-in-the-browser\n");
    await editor.getByText("● Unsaved").waitFor();
    await screenshot(page, "11-editor-unsaved");
    // Closing the panel would drop the unsaved text: it asks first.
    await page.getByRole("button", { name: "Close the workspace panel" }).click();
    await page.getByRole("dialog").getByText("Closing the workspace panel loses them.").waitFor();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    await content.click();
    await page.keyboard.press("Control+s");
    await editor.getByText("Saved.").waitFor();
    expect(await editor.getByText("● Unsaved").count()).toBe(0);
    await showTab("Terminal");
    await run("cat f.txt");
    await waitForLine("edited-in-the-browser");
    await showTab("Files");
  });

  it("uploads files with the picker and by dropping them, and finds them in the tree", async () => {
    // Upload into the workspace's root: select nothing inside a folder.
    await page.getByRole("button", { name: "Close the file" }).click();
    await page.locator('[data-testid="upload-input"]').setInputFiles([
      { name: "upload.txt", mimeType: "text/plain", buffer: Buffer.from("uploaded through the picker\n") },
      { name: "blob.bin", mimeType: "application/octet-stream", buffer: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2, 0xff]) },
    ]);
    await page.getByText("Uploaded 2 files to the workspace.").waitFor();
    await treeItem("upload.txt").waitFor();
    await treeItem("blob.bin").waitFor();

    const drop = await page.evaluateHandle(() => {
      const data = new DataTransfer();
      data.items.add(new File(["dropped on the tree\n"], "dropped.txt", { type: "text/plain" }));
      return data;
    });
    const area = page.locator(".files-tree-area");
    await area.dispatchEvent("dragover", { dataTransfer: drop });
    await area.dispatchEvent("drop", { dataTransfer: drop });
    await treeItem("dropped.txt").waitFor();

    await showTab("Terminal");
    await run("cat upload.txt dropped.txt");
    await waitForLine("uploaded through the picker");
    await waitForLine("dropped on the tree");

    // Uploading over an existing file asks first.
    await showTab("Files");
    await page.locator('[data-testid="upload-input"]').setInputFiles([{ name: "dropped.txt", mimeType: "text/plain", buffer: Buffer.from("replaced by an upload\n") }]);
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: "Replace existing files?" }).waitFor();
    await dialog.getByRole("button", { name: "Replace" }).click();
    await page.getByText("Uploaded 1 file to the workspace.").waitFor();
    await showTab("Terminal");
    await run("cat dropped.txt");
    await waitForLine("replaced by an upload");
    await showTab("Files");
  });

  it("refuses to open a binary file and offers to download it", async () => {
    await treeItem("blob.bin").click();
    const editor = page.getByRole("region", { name: "Editor: blob.bin" });
    await editor.getByText(/This file is binary/).waitFor();
    expect(await editor.locator(".cm-content").count()).toBe(0);
    const download = page.waitForEvent("download");
    await editor.getByRole("button", { name: "Download blob.bin" }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe("blob.bin");
    expect([...readFileSync((await file.path()) ?? "")]).toEqual([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2, 0xff]);
    await page.getByRole("button", { name: "Close the file" }).click();
  });

  it("makes a folder and a file in it, renames the file, and deletes the folder after asking", async () => {
    await page.getByRole("button", { name: "New folder" }).click();
    let dialog = page.getByRole("dialog");
    await dialog.getByRole("textbox").fill("docs");
    await dialog.getByRole("button", { name: "Create" }).click();
    await treeItem("docs").waitFor();
    await treeItem("docs").click();

    await page.getByRole("button", { name: "New file" }).click();
    dialog = page.getByRole("dialog");
    await dialog.getByText("Name (in docs/)").waitFor();
    await dialog.getByRole("textbox").fill("a/b");
    await dialog.getByText("A name cannot contain “/”.").waitFor();
    await dialog.getByRole("textbox").fill("note.md");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.getByRole("region", { name: "Editor: docs/note.md" }).waitFor();
    expect(await treeItem("note.md").getAttribute("aria-level")).toBe("2");

    await treeItem("note.md").getByRole("button", { name: "Rename “note.md”" }).click();
    dialog = page.getByRole("dialog");
    await dialog.getByRole("textbox").fill("readme.md");
    await dialog.getByRole("button", { name: "Rename" }).click();
    await treeItem("readme.md").waitFor();
    expect(await treeItem("note.md").count()).toBe(0);
    // The open file follows its new name.
    await page.getByRole("region", { name: "Editor: docs/readme.md" }).waitFor();
    await screenshot(page, "12-files");

    await treeItem("docs").hover();
    await treeItem("docs").getByRole("button", { name: "Delete “docs”" }).click();
    dialog = page.getByRole("dialog");
    await dialog.getByText("and everything in it").waitFor();
    await dialog.getByText("cannot be undone").waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await treeItem("docs").count()).toBe(1);
    // The keyboard way this time: select the folder and press Delete.
    await treeItem("docs").focus();
    await page.keyboard.press("Delete");
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await treeItem("docs").waitFor({ state: "detached" });
    expect(await treeItem("readme.md").count()).toBe(0);
    expect(await page.getByRole("region", { name: /^Editor:/ }).count()).toBe(0);
  });

  it("downloads the workspace as a zip", async () => {
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download the workspace as a zip" }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe("workspace.zip");
    const bytes = readFileSync((await file.path()) ?? "");
    expect(bytes.subarray(0, 2).toString()).toBe("PK");
    // The zip's central directory names the files.
    expect(bytes.includes(Buffer.from("upload.txt"))).toBe(true);
    expect(bytes.includes(Buffer.from("f.txt"))).toBe(true);
  });

  it("works in the dark theme", async () => {
    await page.getByRole("button", { name: /theme \(change\)/ }).click();
    await page.getByRole("button", { name: /theme \(change\)/ }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe("dark");
    await treeItem("f.txt").click();
    await page.getByRole("region", { name: "Editor: f.txt" }).locator(".cm-content").waitFor();
    await screenshot(page, "13-files-dark");
    await showTab("Terminal");
    await waitForTerminal();
    await screenshot(page, "14-terminal-dark");
  });

  it("covers the chat at phone width and fits the terminal to it", async () => {
    /** What the shell believes its width is. */
    let asked = 0;
    const shellColumns = async () => {
      asked += 1;
      await run(`echo "cols=$(tput cols)#${asked}"`);
      const pattern = new RegExp(`^cols=(\\d+)#${asked}$`);
      const deadline = Date.now() + PATIENCE;
      while (Date.now() < deadline) {
        const match = (await screen()).map((row) => pattern.exec(row.trim())).find((m) => m !== null);
        if (match) return Number(match[1]);
        await page.waitForTimeout(100);
      }
      throw new Error("the shell did not say its width");
    };
    const wide = await shellColumns();
    expect(wide).toBeGreaterThan(40);
    await page.setViewportSize({ width: 390, height: 780 });
    const workspace = page.getByRole("complementary", { name: "Workspace" });
    await page.waitForFunction(() => document.querySelector(".workspace")?.getBoundingClientRect().width === 390);
    expect((await workspace.boundingBox())?.width).toBe(390);
    // The resize reaches the shell a moment after the panel changes size: ask until it has.
    let narrow = wide;
    for (let attempt = 0; attempt < 30 && narrow >= wide; attempt += 1) narrow = await shellColumns();
    expect(narrow).toBeLessThan(wide);
    expect(narrow).toBeGreaterThan(20);
    await screenshot(page, "15-phone-terminal");
    await page.setViewportSize({ width: 1400, height: 860 });
  });

  it("restarts the sandbox after asking: its processes stop, its files stay", async () => {
    await showTab("Terminal");
    await waitForTerminal();
    await run("echo restart-mark > mark.txt; nohup sleep 1000 >/dev/null 2>&1 & echo bg-started");
    await waitForLine("bg-started");
    await page.locator(".sandbox-status").getByRole("button", { name: "Restart" }).click();
    const dialog = page.getByRole("dialog", { name: "Restart the sandbox?" });
    await dialog.getByText("This stops everything that runs in the sandbox").waitFor();
    await screenshot(page, "16-restart-confirm");
    await dialog.getByRole("button", { name: "Restart", exact: true }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.locator('.sandbox-status[data-status="running"]').waitFor();
    // The terminal's shell was one of the stopped processes; Enter starts a new one.
    await waitForTerminal("exited");
    await terminal().locator(".terminal-host").click();
    await page.keyboard.press("Enter");
    await waitForTerminal();
    await run('echo "$(cat mark.txt) sleeping=$(pgrep -c -x -f \'sleep 1000\')"');
    await waitForLine("restart-mark sleeping=0");
  });
});
