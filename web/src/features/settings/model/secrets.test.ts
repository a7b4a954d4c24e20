import { describe, expect, it } from "vitest";
import { isModelCredential, secretNameProblem } from "./secrets";

describe("secret names", () => {
  it("accepts environment variable names", () => {
    for (const name of ["MY_SECRET", "_x", "GITHUB_TOKEN", "a1", ""]) expect(secretNameProblem(name)).toBeNull();
  });

  it("says why a name cannot be one", () => {
    expect(secretNameProblem("1ABC")).toMatch(/not starting with a digit/);
    expect(secretNameProblem("A-B")).toMatch(/Letters, digits and _/);
    expect(secretNameProblem("A".repeat(129))).toBe("At most 128 characters.");
  });

  it("knows the model credentials", () => {
    expect(isModelCredential("ANTHROPIC_API_KEY")).toBe(true);
    expect(isModelCredential("ANTHROPIC_BASE_URL")).toBe(true);
    expect(isModelCredential("GITHUB_TOKEN")).toBe(false);
  });
});
