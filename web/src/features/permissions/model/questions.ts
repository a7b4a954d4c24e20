// The questions of an `AskUserQuestion` request, read defensively from the tool's input (the
// model writes it), and the `answers` the server expects back: each question's text mapped to
// the chosen option's label, or to a list of labels for a multi-select question. Free text
// ("Other") is accepted in place of an option.

export interface QuestionOption {
  label: string;
  description: string | null;
}

export interface Question {
  question: string;
  header: string | null;
  multiSelect: boolean;
  options: QuestionOption[];
}

function text(value: unknown): string | null {
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

/** The well-formed questions of the input; malformed entries are skipped. */
export function questionsOf(input: Record<string, unknown>): Question[] {
  const list = Array.isArray(input.questions) ? input.questions : [];
  const questions: Question[] = [];
  for (const entry of list) {
    if (!entry || typeof entry !== "object") continue;
    const q = entry as Record<string, unknown>;
    const question = text(q.question);
    if (!question) continue;
    const options: QuestionOption[] = [];
    for (const option of Array.isArray(q.options) ? q.options : []) {
      const o = option && typeof option === "object" ? (option as Record<string, unknown>) : {};
      const label = text(o.label);
      if (label) options.push({ label, description: text(o.description) });
    }
    questions.push({ question, header: text(q.header), multiSelect: q.multiSelect === true, options });
  }
  return questions;
}

/** What the user picked for one question: option labels, and free text if they wrote some. */
export interface Choice {
  selected: string[];
  other: string;
}

export const noChoice: Choice = { selected: [], other: "" };

/** Picks (or, for a multi-select question, toggles) `label`. */
export function choose(choice: Choice, label: string, multiSelect: boolean): Choice {
  if (!multiSelect) return { selected: [label], other: "" };
  const selected = choice.selected.includes(label) ? choice.selected.filter((l) => l !== label) : [...choice.selected, label];
  return { ...choice, selected };
}

/**
 * The answers to send, or the text of the first question still unanswered. For a single
 * choice, free text replaces the option; for a multi-select, it is one more entry.
 */
export function buildAnswers(questions: Question[], choices: Record<string, Choice>): { answers: Record<string, string | string[]> } | { missing: string } {
  const answers: Record<string, string | string[]> = {};
  for (const q of questions) {
    const choice = choices[q.question] ?? noChoice;
    const other = choice.other.trim();
    if (q.multiSelect) {
      const picked = other ? [...choice.selected, other] : choice.selected;
      if (picked.length === 0) return { missing: q.question };
      answers[q.question] = picked;
    } else {
      const picked = other || choice.selected[0];
      if (!picked) return { missing: q.question };
      answers[q.question] = picked;
    }
  }
  return { answers };
}

/** The answers of a resolved question, as lines "question: answer". */
export function describeAnswers(answers: Record<string, unknown> | null): string[] {
  if (!answers) return [];
  return Object.entries(answers).map(([question, answer]) => `${question}: ${Array.isArray(answer) ? answer.join(", ") : String(answer)}`);
}
