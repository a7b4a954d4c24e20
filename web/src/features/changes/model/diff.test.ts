import { describe, expect, it } from "vitest";
import { diffStats, lineKind } from "./diff";

const DIFF = `diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -1,2 +1,3 @@
 # project
-old line
+new line
+another
`;

describe("diffStats", () => {
  it("counts added and removed lines, not the file headers", () => {
    expect(diffStats(DIFF)).toEqual({ added: 2, removed: 1 });
    expect(diffStats("")).toEqual({ added: 0, removed: 0 });
  });
});

describe("lineKind", () => {
  it("tells headers, hunks, additions, removals and context apart", () => {
    expect(DIFF.split("\n").slice(0, 8).map(lineKind)).toEqual(["meta", "meta", "meta", "meta", "hunk", "context", "remove", "add"]);
  });
});
