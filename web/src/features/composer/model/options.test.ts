import { describe, expect, it } from "vitest";
import { isSendKey, modelChoices, modelDescription, modelName } from "./options";

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

  it("names known models and shows unknown ones by their id", () => {
    expect(modelName("claude-opus-4-1")).toBe("Opus 4.1");
    expect(modelDescription("claude-haiku-4-5")).toMatch(/fastest/);
    expect(modelName("my-model")).toBe("my-model");
    expect(modelDescription("my-model")).toMatch(/server/);
  });
});
