import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { ChatEvent } from "@/shared/api/types";
import { applyEvent, emptyConversation } from "../model/conversation";
import { MessageList } from "./MessageList";

const A = "00000000-0000-0000-0000-00000000000b";
const at = "2026-01-01T00:00:00Z";

function render_(events: ChatEvent[]) {
  const conversation = events.reduce(applyEvent, emptyConversation);
  return render(<MessageList messages={conversation.messages} />);
}

describe("the conversation view", () => {
  const long = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join("\n");

  it("shows thinking collapsed, tool cards by kind and long output cut", () => {
    const { container } = render_([
      { seq: 1, message_id: A, created_at: at, type: "assistant_thinking", thinking: "Hmm." },
      { seq: 2, message_id: A, created_at: at, type: "tool_started", tool: { id: "t1", name: "Bash", input: { command: "seq 40" } } },
      { seq: 3, message_id: A, created_at: at, type: "tool_completed", tool: { id: "t1", result: long } },
      { seq: 4, message_id: A, created_at: at, type: "tool_started", tool: { id: "t2", name: "Edit", input: { file_path: "src/a.ts", old_string: "let a = 1;", new_string: "let a = 2;" } } },
    ]);
    const thinking = container.querySelector("details.thinking");
    expect(thinking?.hasAttribute("open")).toBe(false);

    const bash = container.querySelector('[data-tool="Bash"]') as HTMLElement;
    // 40 lines of output: the card starts collapsed and shows only the first lines.
    expect(bash.hasAttribute("open")).toBe(false);
    expect(within(bash).getByText("$ seq 40")).toBeTruthy();
    expect(within(bash).queryByText(/line 40/)).toBeNull();
    fireEvent.click(within(bash).getByText("Show all 40 lines"));
    expect(within(bash).getByText(/line 40/)).toBeTruthy();

    const edit = container.querySelector('[data-tool="Edit"]') as HTMLElement;
    expect(edit.hasAttribute("open")).toBe(true);
    expect(within(edit).getByText("src/a.ts")).toBeTruthy();
    expect(edit.querySelector(".diff-del")?.textContent).toContain("let a = 1;");
    expect(edit.querySelector(".diff-add")?.textContent).toContain("let a = 2;");
    expect(within(edit).getByLabelText("Running")).toBeTruthy();
    expect(screen.getByText("Working…")).toBeTruthy();
  });

  it("says plainly when a turn failed or was stopped, with its cost", () => {
    render_([
      { seq: 1, message_id: A, created_at: at, type: "error", message: "The model API answered 500.", code: "model_error" },
      { seq: 2, message_id: A, created_at: at, type: "usage", input_tokens: 1200, output_tokens: 30, total_cost_usd: 0.004 },
      { seq: 3, message_id: A, created_at: at, type: "message_completed", status: "failed", total_cost_usd: 0.004 },
    ]);
    expect(screen.getByRole("alert").textContent).toContain("The model API answered 500.");
    expect(screen.getByText("Failed")).toBeTruthy();
    expect(screen.getByText("1.2k in · 30 out · $0.0040")).toBeTruthy();
  });
});
