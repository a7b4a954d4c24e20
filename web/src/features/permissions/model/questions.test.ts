import { describe, expect, it } from "vitest";
import { buildAnswers, choose, describeAnswers, noChoice, questionsOf } from "./questions";

const input = {
  questions: [
    { question: "Which color?", header: "Color", multiSelect: false, options: [{ label: "red", description: "warm" }, { label: "blue" }] },
    { question: "Which sizes?", multiSelect: true, options: [{ label: "S" }, { label: "M" }, { nonsense: 1 }] },
    { header: "no question text" },
    "not an object",
  ],
};

describe("questions", () => {
  it("reads the well-formed questions and skips the rest", () => {
    const questions = questionsOf(input);
    expect(questions.map((q) => q.question)).toEqual(["Which color?", "Which sizes?"]);
    expect(questions[0]?.options).toEqual([
      { label: "red", description: "warm" },
      { label: "blue", description: null },
    ]);
    expect(questions[1]?.multiSelect).toBe(true);
    expect(questions[1]?.options.map((o) => o.label)).toEqual(["S", "M"]);
    expect(questionsOf({})).toEqual([]);
    expect(questionsOf({ questions: "x" })).toEqual([]);
  });

  it("a single choice replaces the last one; a multi-select toggles", () => {
    let color = choose(noChoice, "red", false);
    color = choose(color, "blue", false);
    expect(color.selected).toEqual(["blue"]);
    let sizes = choose(noChoice, "S", true);
    sizes = choose(sizes, "M", true);
    sizes = choose(sizes, "S", true);
    expect(sizes.selected).toEqual(["M"]);
  });

  it("builds the answers the server expects, or names the first unanswered question", () => {
    const questions = questionsOf(input);
    expect(buildAnswers(questions, {})).toEqual({ missing: "Which color?" });
    expect(buildAnswers(questions, { "Which color?": { selected: ["red"], other: "" } })).toEqual({ missing: "Which sizes?" });
    expect(
      buildAnswers(questions, {
        "Which color?": { selected: ["red"], other: " green " },
        "Which sizes?": { selected: ["S", "M"], other: "XL" },
      }),
    ).toEqual({ answers: { "Which color?": "green", "Which sizes?": ["S", "M", "XL"] } });
  });

  it("describes given answers", () => {
    expect(describeAnswers({ "Which color?": "red", "Which sizes?": ["S", "M"] })).toEqual(["Which color?: red", "Which sizes?: S, M"]);
    expect(describeAnswers(null)).toEqual([]);
  });
});
