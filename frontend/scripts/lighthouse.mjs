// Lighthouse (npm `lighthouse`) on the market and chat pages, in Debian's Chromium, against
// a real `sage serve` on the embedded default (embedded PostgreSQL, replayed market data,
// offline model) that this script starts on a free port with its own data directory, as
// the end-to-end tests do. Serves the built app: run `pnpm run build` first.
//
// The chat page is audited as a signed-in user sees it: the script registers a user through
// the API and puts the session tokens where the app keeps them (sessionStorage
// "sage.tokens") before each document's scripts run, so Lighthouse's own storage reset
// does not sign it out.
//
//   pnpm run lighthouse                         # mobile (Lighthouse's default), 3 runs per page, medians
//   pnpm run lighthouse -- --desktop --runs 1   # the desktop preset, one run
//
// Environment: CHROME_PATH (default /usr/bin/chromium), SAGE_SERVE (default ../.venv/bin/sage serve).
// Reports (HTML and JSON) go to lighthouse-report/ (not committed).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import puppeteer from "puppeteer-core";

const { values: args } = parseArgs({
  // pnpm 10 passes the `--` of `pnpm run lighthouse -- --desktop` through
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    desktop: { type: "boolean", default: false },
    runs: { type: "string", default: "3" },
    pages: { type: "string", default: "market,chat" },
  },
});
const RUNS = Math.max(1, Number(args.runs));
const CATEGORIES = ["performance", "accessibility", "best-practices"];
const PAGES = { market: "/market", chat: "/chat" };
const frontend = resolve(import.meta.dirname, "..");
const repo = resolve(frontend, "..");
const out = join(frontend, "lighthouse-report");
mkdirSync(out, { recursive: true });

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

async function waitReady(base, server) {
  for (let i = 0; i < 360; i += 1) {
    if (server.exitCode !== null) throw new Error(`sage serve exited with ${server.exitCode}`);
    try {
      if ((await fetch(`${base}/health/ready`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("sage serve did not become ready in 3 minutes");
}

async function signUp(base) {
  const email = `lighthouse-${Date.now().toString(36)}@example.com`;
  const password = "correct horse battery";
  const registered = await fetch(`${base}/api/v1/auth/register`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }) });
  if (registered.status !== 201) throw new Error(`register: ${registered.status} ${await registered.text()}`);
  const login = await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }) });
  if (!login.ok) throw new Error(`login: ${login.status}`);
  return JSON.stringify(await login.json());
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), "sage-lighthouse-"));
const env = { ...process.env };
// the embedded default, whatever the calling shell has
for (const name of ["DATABASE_URL", "VALKEY_URL", "ANTHROPIC_API_KEY"]) delete env[name];
Object.assign(env, {
  SAGE_PORT: String(port),
  SAGE_HOST: "127.0.0.1",
  SAGE_DATA_DIR: dataDir,
  SAGE_FRONTEND_DIR: join(frontend, "dist"),
  SAGE_ENV: "development",
  SAGE_LLM_PROVIDER: "offline",
  SAGE_LOG_JSON: "false",
  SAGE_LOG_LEVEL: "WARNING",
});
const serveCommand = process.env.SAGE_SERVE ?? `${join(repo, ".venv", "bin", "sage")} serve`;
const server = spawn(serveCommand, { cwd: repo, env, shell: true, stdio: ["ignore", "inherit", "inherit"], detached: true });

let browser;
try {
  await waitReady(base, server);
  const tokens = await signUp(base);
  browser = await puppeteer.launch({
    executablePath: process.env.CHROME_PATH ?? "/usr/bin/chromium",
    headless: true,
    // Chromium refuses its sandbox as root (containers, CI)
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
  const scores = {};
  let version = "";
  for (const name of args.pages.split(",")) {
    const path = PAGES[name];
    if (!path) throw new Error(`unknown page ${name}; pages: ${Object.keys(PAGES).join(", ")}`);
    scores[name] = Object.fromEntries(CATEGORIES.map((c) => [c, []]));
    for (let run = 1; run <= RUNS; run += 1) {
      const page = await browser.newPage();
      if (name === "chat") {
        await page.evaluateOnNewDocument((value) => {
          if (location.protocol.startsWith("http")) sessionStorage.setItem("sage.tokens", value);
        }, tokens);
      }
      const flags = { output: ["html", "json"], logLevel: "error", onlyCategories: CATEGORIES };
      const result = await lighthouse(`${base}${path}`, flags, args.desktop ? desktopConfig : undefined, page);
      if (!result) throw new Error(`no Lighthouse result for ${name}`);
      const { lhr, report } = result;
      version = lhr.lighthouseVersion;
      if (lhr.runtimeError) throw new Error(`${name}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
      if (new URL(lhr.finalDisplayedUrl).pathname !== path) throw new Error(`${name}: ended on ${lhr.finalDisplayedUrl}, not ${path} (signed out?)`);
      const tag = `${name}-${args.desktop ? "desktop" : "mobile"}-${run}`;
      writeFileSync(join(out, `${tag}.html`), report[0]);
      writeFileSync(join(out, `${tag}.json`), report[1]);
      const line = CATEGORIES.map((c) => {
        const score = Math.round((lhr.categories[c]?.score ?? 0) * 100);
        scores[name][c].push(score);
        return `${c} ${score}`;
      });
      console.log(`${tag}: ${line.join(", ")}`);
      for (const c of CATEGORIES) {
        for (const ref of lhr.categories[c].auditRefs) {
          const audit = lhr.audits[ref.id];
          if (ref.weight > 0 && audit.score !== null && audit.score < 0.9) console.log(`  ${c}: ${ref.id} ${Math.round(audit.score * 100)} ${audit.displayValue ?? ""}`);
        }
      }
      await page.close();
    }
  }
  console.log(`\nLighthouse ${version}, ${args.desktop ? "desktop" : "mobile"} preset, median of ${RUNS} run(s):`);
  let pass = true;
  for (const [name, byCategory] of Object.entries(scores)) {
    const medians = CATEGORIES.map((c) => [c, median(byCategory[c])]);
    pass &&= medians.every(([, v]) => v >= 90);
    console.log(`  ${name}: ${medians.map(([c, v]) => `${c} ${v}`).join(", ")}`);
  }
  console.log(pass ? "goal (each >= 90): met" : "goal (each >= 90): NOT met");
  process.exitCode = pass ? 0 : 1;
} finally {
  await browser?.close();
  // SIGTERM, as a deploy would: sage stops its embedded PostgreSQL on the way out
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    // already gone
  }
  await new Promise((r) => (server.exitCode !== null ? r() : server.once("exit", r)));
  rmSync(dataDir, { recursive: true, force: true });
}
