import { describe, expect, it } from "vitest";
import { isSendKey, modelChoices } from "./options";

describe("composer", () => {
  it("sends on Enter and not on Shift+Enter or while composing", () => {
    expect(isSendKey({ key: "Enter", shiftKey: false })).toBe(true);
    expect(isSendKey({ key: "Enter", shiftKey: true })).toBe(false);
    expect(isSendKey({ key: "Enter", shiftKey: false, isComposing: true })).toBe(false);
    expect(isSendKey({ key: "a", shiftKey: false })).toBe(false);
  });

  it("always offers the chat's own model", () => {
    expect(modelChoices("claude-sonnet-4-5")[0]).toBe("claude-sonnet-4-5");
    expect(modelChoices("my-model")).toContain("my-model");
  });
});
