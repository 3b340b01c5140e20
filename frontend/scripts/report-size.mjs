// Prints the gzip size of the JavaScript index.html loads at start (the entry chunk and the
// chunks it imports statically; lazy chunks such as the charts are not counted) and fails
// the build above the budget.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_KB = 250;
const dist = new URL("../dist/", import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(dist, ".vite", "manifest.json"), "utf8"));
const entry = Object.values(manifest).find((chunk) => chunk.isEntry);
if (!entry) throw new Error("no entry chunk in the Vite manifest");

const seen = new Set();
const visit = (key) => {
  const chunk = manifest[key];
  if (!chunk || seen.has(chunk.file)) return;
  seen.add(chunk.file);
  for (const next of chunk.imports ?? []) visit(next);
};
visit(Object.keys(manifest).find((key) => manifest[key] === entry));

let total = 0;
for (const file of seen) total += gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
const kb = total / 1024;
console.log(`initial JS (gzip): ${kb.toFixed(1)} KB in ${seen.size} file(s); budget ${BUDGET_KB} KB`);
if (kb > BUDGET_KB) {
  console.error(`initial JS is over the ${BUDGET_KB} KB budget`);
  process.exit(1);
}
