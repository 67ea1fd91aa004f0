// stopAfter (src/worker/task-runner.ts): a task's compute interval is never zero-length. Browsers
// coarsen the clock (100 µs) and workerd's moves only with IO, so a fast task used to report
// stop == start; dask 2022.12's scheduler then fails an assertion in work stealing
// (steal_time_ratio) and drops the worker (seen live in test/browser/volunteer.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { InlineExecutor, nowSeconds, registryFromNamespaces, SOURCE_REFUSAL, stopAfter } from "../../src/worker/task-runner.ts";
import { REPO } from "../helpers/env.ts";

test("stopAfter: at least one microsecond after start, even when the clock has not moved", () => {
  // A start stamp ahead of the clock stands for "the clock did not tick while the task ran".
  const start = nowSeconds() + 3600;
  assert.equal(stopAfter(start), start + 1e-6);
  assert.ok(stopAfter(start) > start);
  // With a clock that has moved on, the stop is now (not start + 1 µs).
  const earlier = nowSeconds() - 10;
  assert.ok(stopAfter(earlier) >= earlier + 10 - 0.001);
});

test("InlineExecutor: a trivial task's outcome has stop > start", async () => {
  const tasks = (await import(pathToFileURL(REPO + "examples/tasks.js").href)) as Record<string, unknown>;
  const ex = new InlineExecutor({ registry: registryFromNamespaces({ "tasks.js": tasks }) });
  for (let i = 0; i < 50; i++) {
    const o = await ex.run({ key: `inc-${i}`, fn: { kind: "js", ref: "tasks.js#inc" }, args: [i], kwargs: {} });
    assert.equal(o.status, "ok");
    assert.ok(o.stop > o.start, `inc-${i}: start ${o.start}, stop ${o.stop}`);
  }
  await ex.close();
});

test("the shipped-source refusal text carries its code (a Python client sees only the text)", () => {
  assert.match(SOURCE_REFUSAL, /^DASK_ERR_SOURCE_NOT_ALLOWED: /);
});
