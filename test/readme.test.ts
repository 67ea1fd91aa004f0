// The README documents every error code the source can raise (STYLE.md §5: "List every code with
// one line in README"), and starts with the two commands CI and users run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";

const root = new URL("../", import.meta.url);
const readme = readFileSync(new URL("README.md", root), "utf8");

function sources(dir: URL): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...sources(new URL(`${e.name}/`, dir)));
    else if (e.name.endsWith(".ts")) out.push(readFileSync(new URL(e.name, dir), "utf8"));
  }
  return out;
}

test("every DASK_ERR_ code raised in src/ has a line in README.md", () => {
  // Codes built from a prefix at run time ("DASK_ERR_PICKLE_" + name) are matched in full elsewhere.
  const codes = new Set(sources(new URL("src/", root)).flatMap((s) => s.match(/DASK_ERR_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_])/g) ?? []));
  assert.ok(codes.size > 40, `codes found: ${codes.size}`);
  const missing = [...codes].filter((c) => !readme.includes(`\`${c}\``));
  assert.deepEqual(missing, []);
});

test("README opens with the two commands and .ci/run calls the test command", () => {
  const block = readme.match(/```sh\n([\s\S]*?)```/);
  assert.ok(block, "a sh block");
  const lines = block[1]!.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
  assert.deepEqual(lines, ["npm start", "npm test"]);
  assert.ok(readme.indexOf("```sh") < readme.indexOf("## "), "the commands come before any section");
  const ci = readFileSync(new URL(".ci/run", root), "utf8");
  assert.match(ci, /^npm test$/m);
});
