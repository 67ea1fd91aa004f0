// A short run of the mutation fuzzer (bench/fuzz.ts) inside `npm test`, so a crash or hang in
// any byte parser fails CI. The long run (1,000,000 inputs per target) is `npm run fuzz`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

test("fuzz: 20,000 mutated inputs per parser, no crash, no hang, bounded memory", () => {
  const script = fileURLToPath(new URL("../bench/fuzz.ts", import.meta.url));
  const r = spawnSync(process.execPath, [script, "--count", "20000", "--seed", "7"], { encoding: "utf8" });
  assert.equal(r.status, 0, `fuzz failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /fuzzed 100,000 inputs in total/);
  assert.match(r.stdout, /PASS: no crash, no hang, bounded memory/);
});
