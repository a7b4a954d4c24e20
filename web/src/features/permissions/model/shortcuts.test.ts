import { describe, expect, it } from "vitest";
import { shortcutOf } from "./shortcuts";

describe("request shortcuts", () => {
  it("approves with A and denies with D, either case", () => {
    expect(shortcutOf("a", "SECTION", false)).toBe("approve");
    expect(shortcutOf("D", "BUTTON", false)).toBe("deny");
    expect(shortcutOf("x", "SECTION", false)).toBeNull();
  });

  it("leaves typing and modified keys alone", () => {
    expect(shortcutOf("a", "TEXTAREA", false)).toBeNull();
    expect(shortcutOf("a", "input", false)).toBeNull();
    expect(shortcutOf("a", "SECTION", true)).toBeNull();
  });
});
