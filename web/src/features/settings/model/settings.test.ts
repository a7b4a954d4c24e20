import { describe, expect, it } from "vitest";
import { thinkingFromValue, thinkingOptions, thinkingValue, withHost } from "./settings";

describe("thinking budget choices", () => {
  it("maps the CLI default (null) and numbers to option values and back", () => {
    expect(thinkingValue(null)).toBe("default");
    expect(thinkingValue(undefined)).toBe("default");
    expect(thinkingValue(0)).toBe("0");
    expect(thinkingFromValue("default")).toBeNull();
    expect(thinkingFromValue("0")).toBe(0);
    expect(thinkingFromValue("16384")).toBe(16384);
  });

  it("offers the presets, and a chat's own budget when it is none of them", () => {
    expect(thinkingOptions(4096).map((o) => o.label)).toEqual(["CLI default", "Off", "4k tokens", "16k tokens", "32k tokens"]);
    expect(thinkingOptions(2000).at(-1)).toEqual({ label: "2,000 tokens", value: "2000" });
  });
});

describe("the hosts list", () => {
  it("adds a trimmed host once", () => {
    expect(withHost(["a.com"], " b.com ")).toEqual(["a.com", "b.com"]);
    expect(withHost(["a.com"], "a.com")).toEqual(["a.com"]);
    expect(withHost(["a.com"], "  ")).toEqual(["a.com"]);
  });
});
