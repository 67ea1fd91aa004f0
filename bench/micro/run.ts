// `npm run bench:micro`: runs every bench/micro/*.bench.ts and prints one markdown table per
// kernel, with ratios against the baselines measured in this same run (README "Benchmarks").
// Each bench module exports `run(): Promise<Table[]> | Table[]`.
// Usage: node bench/micro/run.ts [name-filter...]
import { readdirSync } from "node:fs";
import { environmentLine, formatTable, type Table } from "../harness.ts";

const dir = new URL("./", import.meta.url);
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

console.log(`## Micro-benchmarks\n\n${environmentLine()}\n`);
for (const f of files) {
  const mod = (await import(new URL(f, dir).href)) as { run(): Promise<Table[]> | Table[] };
  const tables = await mod.run();
  for (const t of tables) console.log(formatTable(t) + "\n");
}
