// End-to-end journeys in Debian's Chromium against a real `sage serve` on the embedded
// default (embedded PostgreSQL, replayed market data, offline model), started here on a
// free port with its own data directory.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { defineConfig, devices } from "@playwright/test";

// Chosen once in the main process; the workers inherit them through the environment.
process.env.E2E_PORT ??= execFileSync(process.execPath, [
  "-e",
  "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
])
  .toString()
  .trim();
process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), "sage-e2e-"));

// The embedded default: no external database or cache, whatever the calling shell has.
for (const name of ["DATABASE_URL", "VALKEY_URL", "ANTHROPIC_API_KEY"]) Reflect.deleteProperty(process.env, name);

const port = process.env.E2E_PORT;
const repo = resolve(import.meta.dirname, "..");
// `sage` from the checkout's .venv (python3 dev.py installs it); SAGE_SERVE overrides.
const serve = process.env.SAGE_SERVE ?? `${join(repo, ".venv", "bin", "sage")} serve`;

export default defineConfig({
  testDir: "./e2e",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  forbidOnly: !!process.env.CI,
  reporter: [["list"], ["html", { open: "never", outputFolder: "playwright-report" }]],
  outputDir: "test-results",
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" },
  },
  projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"], viewport: { width: 1280, height: 800 } } }],
  webServer: {
    command: serve,
    cwd: repo,
    url: `http://127.0.0.1:${port}/health/ready`,
    timeout: 180_000,
    reuseExistingServer: false,
    // SIGTERM, as a deploy would: sage stops its embedded PostgreSQL on the way out
    gracefulShutdown: { signal: "SIGTERM", timeout: 30_000 },
    stdout: "pipe",
    stderr: "pipe",
    env: {
      SAGE_PORT: port,
      SAGE_HOST: "127.0.0.1",
      SAGE_DATA_DIR: process.env.E2E_DATA_DIR,
      SAGE_FRONTEND_DIR: join(repo, "frontend", "dist"),
      SAGE_ENV: "development",
      SAGE_LLM_PROVIDER: "offline",
      // slow enough to press Stop or reload while the answer streams
      SAGE_LLM_OFFLINE_CHUNK_DELAY_MS: "120",
      SAGE_LOG_JSON: "false",
      SAGE_LOG_LEVEL: "WARNING",
    },
  },
});
