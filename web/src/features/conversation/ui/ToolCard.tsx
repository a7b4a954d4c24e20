// One tool call: a header naming the tool and its target, and a body by tool (see
// model/tools.ts). Long bodies start collapsed; a running call shows that it runs.
import { useState } from "react";
import type { Block } from "../model/conversation";
import { LONG_OUTPUT_LINES, lineCount, toolSubtitle, toolView, type DiffLine } from "../model/tools";
import { Spinner } from "@/shared/ui/Spinner";

type ToolBlock = Extract<Block, { kind: "tool" }>;

/** `waiting`: the call waits for the user's answer to a request about it. */
export function ToolCard({ block, waiting = false }: { block: ToolBlock; waiting?: boolean }) {
  const view = toolView(block.name, block.input);
  const subtitle = toolSubtitle(view);
  const bodyLines = (view.kind === "diff" ? view.changes.length : 0) + (view.kind === "generic" ? lineCount(view.input) : 0) + lineCount(block.output);
  const [open, setOpen] = useState(bodyLines <= LONG_OUTPUT_LINES * 2);
  return (
    <details className={`tool-card tool-${block.state}`} open={open} onToggle={(e) => setOpen(e.currentTarget.open)} data-tool={block.name} data-seq={block.seq}>
      <summary>
        <span className="tool-name">{block.name}</span>
        <span className="tool-subtitle">{subtitle}</span>
        <span className="tool-state">
          {block.state === "running" && waiting ? (
            <span className="badge badge-warn">waiting for you</span>
          ) : block.state === "running" ? (
            <Spinner label="Running" />
          ) : block.state === "failed" ? (
            <span className="bad">failed</span>
          ) : (
            <span className="good">done</span>
          )}
        </span>
      </summary>
      <div className="tool-body">
        {view.kind === "bash" && <pre className="tool-command">$ {view.command}</pre>}
        {view.kind === "diff" && <Diff changes={view.changes} />}
        {view.kind === "generic" && <pre className="tool-input">{view.input}</pre>}
        {block.output !== null && (view.kind !== "diff" || block.state === "failed") && <Output text={block.output} failed={block.state === "failed"} />}
        {block.output === null && block.state === "running" && <p className="muted small">{waiting ? "Waiting for your answer below." : "Running…"}</p>}
      </div>
    </details>
  );
}

function Diff({ changes }: { changes: DiffLine[] }) {
  return (
    <pre className="diff" aria-label="Changes">
      {changes.map((line, index) => (
        <span key={index} className={line.sign === "+" ? "diff-add" : line.sign === "-" ? "diff-del" : "diff-ctx"}>
          {line.sign} {line.text}
          {"\n"}
        </span>
      ))}
    </pre>
  );
}

/** A tool's output, cut to its first lines until the user asks for all of it. */
function Output({ text, failed }: { text: string; failed: boolean }) {
  const lines = text.split("\n");
  const [all, setAll] = useState(lines.length <= LONG_OUTPUT_LINES);
  const shown = all ? text : lines.slice(0, LONG_OUTPUT_LINES).join("\n");
  return (
    <div className={`tool-output ${failed ? "tool-output-failed" : ""}`}>
      <pre>{shown || <span className="muted">(no output)</span>}</pre>
      {!all && (
        <button type="button" className="link small" onClick={() => setAll(true)}>
          Show all {lines.length} lines
        </button>
      )}
    </div>
  );
}
