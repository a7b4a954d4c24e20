import { describe, expect, it } from "vitest";
import { formatCost, formatTokens } from "./format";

describe("formatting", () => {
  it("shows small costs with enough digits", () => {
    expect(formatCost(null)).toBeNull();
    expect(formatCost(0.0123)).toBe("$0.01");
    expect(formatCost(0.00042)).toBe("$0.0004");
    expect(formatCost(1.5)).toBe("$1.50");
  });

  it("shortens token counts", () => {
    expect(formatTokens(950)).toBe("950");
    expect(formatTokens(12_345)).toBe("12.3k");
    expect(formatTokens(250_000)).toBe("250k");
  });
});
