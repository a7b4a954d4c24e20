// The end-to-end harness: the real `agentbox` binary (`serve` and `mock-llm`), the real Claude
// Code CLI, and Debian's Chromium driven by playwright-core. Nothing is faked but the model.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(WEB, "..");
export const ARTIFACTS = join(WEB, "test-results");

/** How long one step may wait for the server, the CLI or the browser; only a hang reaches it. */
export const PATIENCE = Number(process.env.E2E_PATIENCE_MS ?? 90_000);

function binary(): string {
  const candidates = [
    process.env.AGENTBOX_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug", "agentbox"),
    join(ROOT, "target", "debug", "agentbox"),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`agentbox is not built (looked at ${candidates.join(", ")}): run scripts/setup --dev`);
  return found;
}

function cli(): string {
  if (process.env.AGENTBOX_CLAUDE_PATH) return process.env.AGENTBOX_CLAUDE_PATH;
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const path = join(ROOT, "tools/claude-code/node_modules/@anthropic-ai", `claude-code-linux-${arch}`, "claude");
  if (!existsSync(path)) throw new Error(`the Claude Code CLI is not installed at ${path}: run scripts/setup --dev`);
  return path;
}

export const CHROMIUM = process.env.AGENTBOX_CHROMIUM ?? "/usr/bin/chromium";

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

async function waitFor(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + PATIENCE;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode}):\n${log()}`);
    try {
      const response = await fetch(url);
      if (response.status < 500) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer in time:\n${log()}`);
}

function start(args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(binary(), args, {
    cwd: ROOT,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info,sqlx=warn,tower_http=warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { child, log: () => output };
}

export interface Stack {
  base: string;
  dataDir: string;
  /** The agent's home as the agent sees it: `/home/user` in an isolating sandbox. */
  agentHome: (chatId: string) => string;
  browser: Browser;
  serverLog: () => string;
  stop: () => Promise<void>;
}

/** Starts the mock model, the server (on an empty data directory) and the browser. */
/** `serverArgs` adds flags to `agentbox serve`, given the port it will listen on. */
export async function startStack(serverArgs: (port: number) => string[] = () => []): Promise<Stack> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), "agentbox-e2e-"));
  // Sandboxes of the `local` provider run as users of their own, who must be able to pass
  // through to their home inside the data directory (but not list it).
  chmodSync(tmp, 0o711);
  const dataDir = join(tmp, "data");
  const mockPort = await freePort();
  const mock = start(["mock-llm", "--port", String(mockPort)]);
  await waitFor(`http://127.0.0.1:${mockPort}/`, mock.child, mock.log);
  const port = await freePort();
  const extra = serverArgs(port);
  // No retries of a failed model call unless a test asks for them: a failure shows at once.
  const retries = extra.includes("--cli-max-retries") ? [] : ["--cli-max-retries", "0"];
  const server = start([
    "serve",
    "--bind", `127.0.0.1:${port}`,
    "--data-dir", dataDir,
    "--anthropic-api-key", "e2e-test-key",
    "--anthropic-base-url", `http://127.0.0.1:${mockPort}`,
    "--claude-path", cli(),
    ...retries,
    "--interrupt-grace-secs", "3",
    ...extra,
  ]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health`, server.child, server.log);
  const health = (await (await fetch(`${base}/health`)).json()) as { sandbox: { isolated?: boolean } };
  const agentHome = (chatId: string) => (health.sandbox.isolated ? "/home/user" : join(dataDir, "sandboxes", chatId, "home"));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a fresh temporary --user-data-dir of its own.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const stop = async () => {
    await browser.close().catch(() => undefined);
    for (const child of [server.child, mock.child]) {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  return { base, dataDir, agentHome, browser, serverLog: server.log, stop };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

/** Types `prompt` into the composer and presses Enter (sends, or queues during a turn). */
export async function sendPrompt(page: Page, prompt: string): Promise<void> {
  const box = page.getByRole("textbox", { name: "Prompt" });
  await box.fill(prompt);
  await box.press("Enter");
}

/** Waits until no turn runs: no busy assistant message, and the composer offers Send. */
export async function waitForTurnEnd(page: Page): Promise<void> {
  await page.locator('li.message-assistant[aria-busy="true"]').first().waitFor({ state: "detached", timeout: PATIENCE });
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: PATIENCE });
}

/** On a fresh server: creates the first account, opens a new chat and returns its id. */
export async function signUpWithNewChat(page: Page, email: string): Promise<string> {
  await page.goto("/");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel(/^Password/).fill("a long password");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.waitForURL((url) => url.pathname.startsWith("/chats/"));
  await page.getByText("Start the conversation").waitFor();
  return new URL(page.url()).pathname.split("/").pop() ?? "";
}

/** For `afterEach`: what the page showed when a step failed, next to the other screenshots. */
export async function screenshotIfFailed(page: Page, prefix: string, task: { name: string; result?: { state?: string } }): Promise<void> {
  if (task.result?.state === "fail") {
    await screenshot(page, `${prefix}-${task.name.replace(/[^a-z0-9]+/gi, "-")}`).catch(() => undefined);
  }
}
