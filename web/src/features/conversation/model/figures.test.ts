import { describe, expect, it } from "vitest";
import { contextFill, hasFigures } from "./figures";

describe("the context meter", () => {
  it("reads the latest turn that reported its context", () => {
    const fill = contextFill([
      { input_tokens: 1, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, context_tokens: 1000, context_window: 200_000 },
      { input_tokens: 1, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, context_tokens: 46_000, context_window: 200_000 },
      null,
    ]);
    expect(fill).toEqual({ tokens: 46_000, window: 200_000, share: 0.23, label: "46.0k of 200k (23 %)" });
  });

  it("is absent without figures and full at most", () => {
    expect(contextFill([])).toBeNull();
    expect(contextFill([{ input_tokens: 1, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 }])).toBeNull();
    const over = contextFill([{ input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, context_tokens: 300, context_window: 200 }]);
    expect(over?.share).toBe(1);
  });
});

describe("a turn's figures", () => {
  it("are left out when a failed turn reports only zeros", () => {
    expect(hasFigures({ input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 }, 0)).toBe(false);
    expect(hasFigures(null, null)).toBe(false);
    expect(hasFigures({ input_tokens: 10, output_tokens: 2, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 }, 0.001)).toBe(true);
  });
});
