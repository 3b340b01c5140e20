/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `pnpm dev` forwards the API to Sage (http://127.0.0.1:3000, or SAGE_API_PROXY in the
// compose stack), so the app calls it on its own origin as it does behind CloudFront.
const api = process.env.SAGE_API_PROXY ?? "http://127.0.0.1:3000";

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      "/api": { target: api, changeOrigin: true },
      "/health": { target: api, changeOrigin: true },
    },
  },
  build: {
    target: "es2022",
    sourcemap: true,
    manifest: true,
    chunkSizeWarningLimit: 700, // the budget that matters is checked by scripts/report-size.mjs
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    // 5 s (the default) per test is too short for a form-filling test when the two cores
    // are shared (PortfolioPage's correction test timed out at load 17-20); a hang still fails
    testTimeout: 30_000,
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
