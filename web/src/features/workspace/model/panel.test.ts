import { describe, expect, it } from "vitest";
import { clampWidth, isOpen, MIN_WIDTH, opened } from "./panel";
import { closesSheet } from "./sheet";

describe("the workspace panel's width", () => {
  it("stays between its minimum and what leaves the conversation usable", () => {
    expect(clampWidth(100, 1600)).toBe(MIN_WIDTH);
    expect(clampWidth(600.4, 1600)).toBe(600);
    expect(clampWidth(1500, 1600)).toBe(1180);
    // A narrow window still gets the minimum (at phone width the panel is a sheet, its width unused).
    expect(clampWidth(500, 600)).toBe(MIN_WIDTH);
  });
});

describe("the workspace panel's open state", () => {
  it("is one remembered choice on a wide screen, for every chat", () => {
    const state = { open: false, sheet: null, ...opened("a", false, true) };
    expect(isOpen(state, "a", false)).toBe(true);
    expect(isOpen(state, "b", false)).toBe(true);
    expect(isOpen({ ...state, ...opened("b", false, false) }, "a", false)).toBe(false);
  });

  it("is one chat's sheet on a phone, closed in any other chat", () => {
    const state = { open: false, sheet: null, ...opened("a", true, true) };
    expect(isOpen(state, "a", true)).toBe(true);
    expect(isOpen(state, "b", true)).toBe(false);
    expect(isOpen({ ...state, ...opened("a", true, false) }, "a", true)).toBe(false);
  });

  it("keeps the two apart: the sheet leaves the wide choice as it was", () => {
    const wide = { open: true, sheet: null };
    const phone = { ...wide, ...opened("a", true, false) };
    expect(phone.open).toBe(true);
    expect(isOpen(phone, "a", false)).toBe(true);
    expect(isOpen({ open: false, sheet: "a" }, "a", false)).toBe(false);
  });

  it("has no sheet to open outside a chat", () => {
    expect(opened(null, true, true)).toEqual({ sheet: null });
  });
});

describe("Escape on the sheet", () => {
  const inside = (selector: string) => {
    const host = document.createElement("div");
    host.className = selector;
    const child = document.createElement("textarea");
    host.append(child);
    return child;
  };

  it("closes it, unless a terminal, the editor or a dialog has the key, or it was taken", () => {
    expect(closesSheet("Escape", document.body, false)).toBe(true);
    expect(closesSheet("Escape", null, false)).toBe(true);
    expect(closesSheet("Enter", document.body, false)).toBe(false);
    expect(closesSheet("Escape", document.body, true)).toBe(false);
    expect(closesSheet("Escape", inside("terminal-host"), false)).toBe(false);
    expect(closesSheet("Escape", inside("cm-editor"), false)).toBe(false);
  });
});
