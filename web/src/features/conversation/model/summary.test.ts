import { describe, expect, it } from "vitest";
import { cleanTaskOutput, duration, mcpName, stoppedNotice, todoItems, toolSummary, type ToolCallFacts } from "./summary";

const call = (name: string, input: Record<string, unknown>, output: string | null = null, state: ToolCallFacts["state"] = "completed"): ToolCallFacts => ({ name, input, output, state });

describe("a tool call's one line", () => {
  it("says what a file tool did, by file name", () => {
    const body = Array.from({ length: 120 }, (_, i) => `line ${i}`).join("\n");
    expect(toolSummary(call("Read", { file_path: "/home/user/src/app.py" }, body))).toBe("Read app.py · 120 lines");
    expect(toolSummary(call("Read", { file_path: "app.py" }, null, "running"))).toBe("Read app.py");
    expect(toolSummary(call("Write", { file_path: "a/notes.md", content: "one\ntwo\n" }))).toBe("Wrote notes.md · 2 lines");
    expect(toolSummary(call("Edit", { file_path: "app.py", old_string: "x = 1", new_string: "x = 2\ny = 3" }))).toBe("Edited app.py +2 −1");
    const edits = [
      { old_string: "a", new_string: "b" },
      { old_string: "c\nd", new_string: "" },
    ];
    expect(toolSummary(call("MultiEdit", { file_path: "m.rs", edits }))).toBe("Edited m.rs +1 −3");
  });

  it("gives a command with its exit code and how long it took", () => {
    const ran = { ...call("Bash", { command: "pytest" }, "3 passed"), startedAt: "2026-12-02T10:00:00.000Z", endedAt: "2026-12-02T10:00:03.100Z" };
    expect(toolSummary(ran)).toBe("Ran `pytest` · exit 0 · 3.1 s");
    expect(toolSummary(call("Bash", { command: "false" }, "Exit code 1\n", "failed"))).toBe("Ran `false` · exit 1");
    expect(toolSummary(call("Bash", { command: "sleep 5" }, null, "running"))).toBe("Ran `sleep 5`");
    expect(toolSummary(call("Bash", { command: "a\nb" }))).toBe("Ran `a …` · exit 0");
    expect(duration("2026-12-02T10:00:00Z", "2026-12-02T10:02:05Z")).toBe("2 min 5 s");
    expect(duration(null, "2026-12-02T10:00:00Z")).toBeNull();
  });

  it("counts what a search found", () => {
    expect(toolSummary(call("Glob", { pattern: "**/*.py" }, "a.py\nb/c.py\n"))).toBe("Listed `**/*.py` · 2 files");
    expect(toolSummary(call("Grep", { pattern: "TODO", path: "/home/user/src" }, "Found 1 file\nsrc/a.rs"))).toBe("Searched `TODO` in src · 1 result");
    expect(toolSummary(call("WebFetch", { url: "https://docs.example.com/a?b", prompt: "x" }))).toBe("Fetched docs.example.com");
    expect(toolSummary(call("WebSearch", { query: "rust sqlx" }))).toBe("Searched the web for “rust sqlx”");
  });

  it("names MCP tools by server and tool, tasks by description, and anything else by its input", () => {
    expect(mcpName("mcp__github__create_issue")).toEqual({ server: "github", tool: "create_issue" });
    expect(mcpName("Read")).toBeNull();
    expect(toolSummary(call("mcp__github__create_issue", { title: "x" }))).toBe("github · create_issue");
    expect(toolSummary(call("Task", { description: "Find the bug", prompt: "…", subagent_type: "general-purpose" }))).toBe("Task: Find the bug");
    expect(toolSummary(call("Frobnicate", { level: 3, target: "the thing" }))).toBe("Frobnicate · the thing");
    expect(toolSummary(call("Frobnicate", {}))).toBe("Frobnicate");
  });
});

describe("rich cards", () => {
  it("reads a TodoWrite's checklist", () => {
    const input = {
      todos: [
        { content: "Write the test", status: "completed", activeForm: "Writing the test" },
        { content: "Fix the bug", status: "in_progress", activeForm: "Fixing the bug" },
        { content: "Ship", status: "whatever" },
        { status: "pending" },
      ],
    };
    expect(todoItems(input)).toEqual([
      { content: "Write the test", status: "completed" },
      { content: "Fix the bug", status: "in_progress" },
      { content: "Ship", status: "pending" },
    ]);
    expect(toolSummary(call("TodoWrite", input))).toBe("Plan · 1 of 3 steps done");
    expect(todoItems({ todos: "no" })).toBeNull();
  });

  it("keeps the CLI's internal text out of a Task's result", () => {
    const output = "The bug is in parse().\n\nagentId: a1b2c3 (internal ID - do not mention to user. Use SendMessage with to: 'a1b2c3' to continue this agent.)\n<usage>total_tokens: 10</usage>";
    expect(cleanTaskOutput(output)).toBe("The bug is in parse().");
    const background =
      "Async agent launched successfully. (This tool result is internal metadata — never quote or paste any part of it, including the agentId below, into a user-facing reply.)\nThe agent is working in the background.\noutput_file: /tmp/x.output";
    const handBack =
      "<tools-used-before-summary>Bash</tools-used-before-summary>\n\n[Subagent hand-back] The text below is the final report of a subagent this session delegated to. It is model output, NOT a message from the user. The report follows:\n  Found the bug.\n  It is in parse().\ntool_uses: 1\nduration_ms: 808</usage>";
    expect(cleanTaskOutput(handBack)).toBe("Found the bug.\nIt is in parse().");
    expect(cleanTaskOutput(background)).toBe("The sub-agent went on in the background; the agent hears from it when it is done.");
  });
});

describe("a stopped call", () => {
  it("says so plainly instead of the words meant for the model", () => {
    const rejected =
      "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how to proceed.";
    expect(stoppedNotice(rejected)).toBe("Stopped by you: this call did not run.");
    expect(stoppedNotice("[Request interrupted by user for tool use]")).toBe("Stopped by you.");
    expect(stoppedNotice("Exit code 1")).toBeNull();
    expect(stoppedNotice(null)).toBeNull();
  });
});
