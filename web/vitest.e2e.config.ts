// The end-to-end suite: the real `agentbox serve` binary, the real Claude Code CLI and
// `agentbox mock-llm` as the model, driven in Debian's Chromium through playwright-core.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/**/*.e2e.ts"],
    // One browser and one server for the whole suite; the steps build on each other.
    fileParallelism: false,
    // The steps build on each other: after the first failure the rest would only time out.
    bail: 1,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
