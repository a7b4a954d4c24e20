// The admin screen against the real server, in Chromium: the first account is the
// administrator, sees the other user with their usage, disables them (the user's open page
// is signed out at once and cannot sign in again, and the audit log says so), and enables
// them again; sets the user's own turn limit, which the user's composer then shows plainly,
// and closes registration, after which sign-up is not offered; resets the user's password
// (a too-short one is refused with the rule), after which the user signs in with the new one.
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PATIENCE, screenshot, screenshotIfFailed, startStack, type Stack } from "./support";

let stack: Stack;
let adminContext: BrowserContext;
let userContext: BrowserContext;
let admin: Page;
let user: Page;

const PASSWORD = "a long password";

beforeAll(async () => {
  stack = await startStack();
  adminContext = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  userContext = await stack.browser.newContext({ baseURL: stack.base, viewport: { width: 1280, height: 820 } });
  adminContext.setDefaultTimeout(PATIENCE);
  userContext.setDefaultTimeout(PATIENCE);
  admin = await adminContext.newPage();
  user = await userContext.newPage();
});

afterEach(async (test) => {
  await screenshotIfFailed(admin, "admin-failed", test.task);
  await screenshotIfFailed(user, "admin-user-failed", test.task);
});

afterAll(async () => {
  await stack?.stop();
});

function row(email: string): Locator {
  return admin.getByRole("row", { name: email });
}

describe("administration in the web UI", () => {
  it("lets the first account disable another user, who is signed out at once", async () => {
    // The first account of the server: its creator is the administrator.
    await admin.goto("/");
    await admin.getByRole("heading", { name: "Create the first account" }).waitFor();
    await admin.getByLabel("Email").fill("boss@example.com");
    await admin.getByLabel(/^Password/).fill(PASSWORD);
    await admin.getByRole("button", { name: "Create account" }).click();
    await admin.getByRole("button", { name: "Admin", exact: true }).waitFor();

    // A second person signs up (registration is open) and starts a chat.
    await user.goto("/");
    await user.getByRole("button", { name: "Create one" }).click();
    await user.getByLabel("Email").fill("member@example.com");
    await user.getByLabel(/^Password/).fill(PASSWORD);
    await user.getByRole("button", { name: "Create account" }).click();
    await user.getByRole("button", { name: "+ New chat" }).click();
    await user.getByText("Start the conversation").waitFor();
    // A user who is not an administrator is offered no admin screen.
    expect(await user.getByRole("button", { name: "Admin", exact: true }).count()).toBe(0);

    await admin.getByRole("button", { name: "Admin", exact: true }).click();
    await admin.waitForURL((url) => url.pathname === "/admin");
    await row("member@example.com").waitFor();
    expect(await row("member@example.com").getByRole("cell").nth(1).textContent()).toBe("Active");
    expect(await row("member@example.com").getByRole("cell").nth(2).textContent()).toBe("1");
    // The only administrator is offered nothing that would leave the server without one.
    expect(await row("boss@example.com").getByRole("button", { name: "Disable" }).count()).toBe(0);
    expect(await row("boss@example.com").getByRole("button", { name: "Remove admin" }).count()).toBe(0);
    await screenshot(admin, "60-admin-users");

    await row("member@example.com").getByRole("button", { name: "Disable" }).click();
    await row("member@example.com").getByRole("cell", { name: "Disabled" }).waitFor();
    await row("member@example.com").getByRole("button", { name: "Enable" }).waitFor();

    // The user's open page loses its session (its stream is closed and the next request
    // is refused) and lands on sign-in, where the password no longer gets them in.
    await user.getByRole("heading", { name: "Sign in" }).waitFor();
    await user.getByLabel(/^Password/).fill(PASSWORD);
    await user.getByRole("button", { name: "Sign in" }).click();
    await user.getByRole("alert").filter({ hasText: "An administrator has disabled this account." }).waitFor();
    await screenshot(user, "61-disabled-user");

    // The audit log on the same screen names the disable.
    await admin
      .getByRole("list", { name: "Audit log, newest first" })
      .getByText("boss@example.com changed an account member@example.com")
      .first()
      .waitFor();

    await row("member@example.com").getByRole("button", { name: "Enable" }).click();
    await row("member@example.com").getByRole("cell", { name: "Active" }).waitFor();
    await user.getByRole("button", { name: "Sign in" }).click();
    await user.getByRole("button", { name: "+ New chat" }).waitFor();
  });

  it("sets one user's turn limit, which their composer shows, and closes registration", async () => {
    await row("member@example.com").getByRole("button", { name: "Limits" }).click();
    const panel = admin.getByRole("region", { name: "Limits of member@example.com" });
    await panel.getByLabel("Turns per day: kind").selectOption("value");
    await panel.getByLabel("Turns per day: value").fill("0");
    await panel.getByRole("button", { name: "Save limits" }).click();
    await panel.getByRole("status").filter({ hasText: "Saved." }).waitFor();
    await panel.getByText("in force: 0").waitFor();
    await screenshot(admin, "62-admin-user-limits");

    await user.getByRole("button", { name: "+ New chat" }).click();
    await user.getByRole("textbox", { name: "Prompt" }).fill("[[text:never sent]]");
    await user.getByRole("button", { name: "Send" }).click();
    await user.getByRole("alert").filter({ hasText: "Limit reached: turns per day (0)" }).waitFor();
    expect(await user.getByRole("alert").filter({ hasText: "resets at" }).count()).toBe(1);
    await screenshot(user, "63-limit-reached");

    const registration = admin.getByLabel("Registration");
    expect(await registration.inputValue()).toBe("open");
    await registration.selectOption("closed");
    await admin.getByRole("list", { name: "Audit log, newest first" }).getByText("boss@example.com changed the registration mode").first().waitFor();
    const visitor = await stack.browser.newContext({ baseURL: stack.base });
    const page = await visitor.newPage();
    await page.goto("/");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.getByRole("button", { name: "Create one" }).count()).toBe(0);
    await visitor.close();
    // Set back from the screen after a reload: the server kept it.
    await admin.reload();
    expect(await admin.getByLabel("Registration").inputValue()).toBe("closed");
  });

  it("resets the user's password, who then signs in with the new one", async () => {
    const NEW_PASSWORD = "another long passphrase";
    expect(await row("boss@example.com").getByRole("button", { name: "Reset password" }).count()).toBe(0);
    await row("member@example.com").getByRole("button", { name: "Reset password" }).click();
    const panel = admin.getByRole("region", { name: "Reset the password of member@example.com" });
    await panel.getByLabel("New password").fill("short");
    await panel.getByRole("button", { name: "Set password" }).click();
    await panel.getByRole("alert").filter({ hasText: "The password is too short. Use at least 8 characters" }).waitFor();
    await panel.getByLabel("New password").fill(NEW_PASSWORD);
    await panel.getByRole("button", { name: "Set password" }).click();
    await panel.getByRole("status").filter({ hasText: "The password of member@example.com is set." }).waitFor();
    await screenshot(admin, "64-admin-reset-password");
    await admin
      .getByRole("list", { name: "Audit log, newest first" })
      .getByText("boss@example.com reset the password of member@example.com")
      .first()
      .waitFor();

    // The member, in a fresh browser: the old password is refused, the new one signs in.
    const fresh = await stack.browser.newContext({ baseURL: stack.base });
    fresh.setDefaultTimeout(PATIENCE);
    const page = await fresh.newPage();
    await page.goto("/");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Email").fill("member@example.com");
    await page.getByLabel(/^Password/).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    await page.getByLabel(/^Password/).fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "+ New chat" }).waitFor();
    await fresh.close();
  });
});
