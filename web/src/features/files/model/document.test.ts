import { describe, expect, it } from "vitest";
import type { Conversation, MessageView } from "@/features/conversation/model/conversation";
import {
  BINARY_MESSAGE,
  MAX_EDITABLE_BYTES,
  MAX_TRANSFER_BYTES,
  classifyContent,
  fileChangeMark,
  formatSize,
  languageFor,
  planUploads,
  refusalFor,
} from "./document";

function tool(seq: number, name: string, state: "running" | "completed" | "failed") {
  return { kind: "tool" as const, seq, id: `t${seq}`, name, input: {}, state, output: null, parent: null };
}

function conversation(...messages: Partial<MessageView>[]): Conversation {
  return {
    lastSeq: 0,
    pending: [],
    messages: messages.map((m, i) => ({ id: `m${i}`, role: "assistant", status: "in_progress", blocks: [], usage: null, costUsd: null, model: null, live: "", liveThinking: "", ...m })),
  };
}

describe("what the editor opens", () => {
  it("opens text and refuses binary files, directories, special files and huge files", () => {
    expect(classifyContent(new TextEncoder().encode("héllo\n"))).toEqual({ kind: "text", text: "héllo\n" });
    expect(classifyContent(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1]))).toEqual({ kind: "binary" });
    expect(classifyContent(new Uint8Array([0xff, 0xfe, 0x41]))).toEqual({ kind: "binary" });
    expect(classifyContent(new Uint8Array())).toEqual({ kind: "text", text: "" });
    expect(BINARY_MESSAGE).toMatch(/Download/);

    expect(refusalFor({ kind: "file", size: MAX_EDITABLE_BYTES })).toBeNull();
    expect(refusalFor({ kind: "symlink", size: 12 })).toBeNull();
    expect(refusalFor({ kind: "file", size: MAX_EDITABLE_BYTES + 1 })).toMatch(/too large to edit here \(2\.0 MiB/);
    expect(refusalFor({ kind: "dir", size: 0 })).toMatch(/directory/);
    expect(refusalFor({ kind: "other", size: 0 })).toMatch(/not a regular file/);
  });

  it("guesses the language from the name", () => {
    expect(languageFor("src/main.rs")).toBe("rust");
    expect(languageFor("web/App.TSX")).toBe("tsx");
    expect(languageFor("Dockerfile")).toBe("dockerfile");
    expect(languageFor(".bashrc")).toBe("shell");
    expect(languageFor("notes")).toBeNull();
    expect(languageFor("archive.tar.gz")).toBeNull();
  });

  it("formats sizes", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(1536)).toBe("1.5 KiB");
    expect(formatSize(3 * 1024 * 1024)).toBe("3.0 MiB");
  });

  it("plans uploads into a directory and refuses files over the server's limit", () => {
    const small = new File(["abc"], "a.txt");
    const huge = { size: MAX_TRANSFER_BYTES + 1, name: "big.bin" } as File;
    const plan = planUploads([{ file: small, relativePath: "a.txt" }, { file: huge, relativePath: "big.bin" }, { file: small, relativePath: "d/b.txt" }], "src");
    expect(plan.uploads.map((u) => u.path)).toEqual(["src/a.txt", "src/d/b.txt"]);
    expect(plan.refused).toEqual(["big.bin is 64.0 MiB; at most 64.0 MiB can be uploaded."]);
    expect(planUploads([{ file: small, relativePath: "a.txt" }], "").uploads[0]?.path).toBe("a.txt");
  });
});

describe("the file-change mark", () => {
  it("changes when a file tool finishes or a turn ends, and not for other tools or running ones", () => {
    const running = conversation({ blocks: [tool(2, "Write", "running"), tool(3, "Read", "completed")] });
    const written = conversation({ blocks: [tool(2, "Write", "completed"), tool(3, "Read", "completed")] });
    const bashFailed = conversation({ blocks: [tool(2, "Write", "completed"), tool(3, "Read", "completed"), tool(4, "Bash", "failed")] });
    const ended = conversation({ status: "completed", blocks: [tool(2, "Write", "completed"), tool(3, "Read", "completed"), tool(4, "Bash", "failed")] });
    const marks = [undefined, running, written, bashFailed, ended].map(fileChangeMark);
    expect(new Set(marks).size).toBe(marks.length);
    expect(fileChangeMark(conversation({ blocks: [tool(3, "Read", "completed")] }))).toBe(fileChangeMark(conversation()));
    // The same conversation built again (a refetch) gives the same mark.
    expect(fileChangeMark(conversation({ status: "completed", blocks: [tool(2, "Write", "completed")] }))).toBe(
      fileChangeMark(conversation({ status: "completed", blocks: [tool(2, "Write", "completed")] })),
    );
  });
});
