// Vite builds the single-page app into dist/, which the agentbox binary embeds
// (crates/server/src/spa.rs). `npm run dev` serves it with the API proxied to a running
// `agentbox serve` on AGENTBOX_URL (default http://127.0.0.1:8080).
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const api = process.env.AGENTBOX_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  // `ws` lets the terminal WebSocket through the dev server too.
  server: { proxy: { "/api": { target: api, ws: true }, "/health": api } },
  build: { sourcemap: false, chunkSizeWarningLimit: 1024 },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
  },
});
