import { describe, expect, it } from "vitest";
import { clampWidth, MIN_WIDTH } from "./panel";

describe("the workspace panel's width", () => {
  it("stays between its minimum and what leaves the conversation usable", () => {
    expect(clampWidth(100, 1600)).toBe(MIN_WIDTH);
    expect(clampWidth(600.4, 1600)).toBe(600);
    expect(clampWidth(1500, 1600)).toBe(1180);
    // A narrow window still gets the minimum (phone width covers the chat anyway).
    expect(clampWidth(500, 600)).toBe(MIN_WIDTH);
  });
});
