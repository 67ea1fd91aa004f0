// The live-test helper itself (test/helpers/wasm-worker.ts): Prometheus parsing, and that a
// worker that cannot start makes startWasmWorker fail at once with its log (not hang until a
// timeout), leaving no process behind.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { parsePrometheus, startWasmWorker, stopEverything } from "../helpers/wasm-worker.ts";

after(stopEverything);

test("parsePrometheus: comments skipped, labels kept in the name, exponents and NaN read", () => {
  const text = [
    "# HELP dask_wasm_tasks_run_total Tasks run.",
    "# TYPE dask_wasm_tasks_run_total counter",
    "dask_wasm_tasks_run_total 12",
    'dask_wasm_x{kind="a"} 1.5e3 1700000000000',
    "",
    "dask_wasm_nan NaN",
  ].join("\n");
  const m = parsePrometheus(text);
  assert.deepEqual([...m.keys()], ["dask_wasm_tasks_run_total", 'dask_wasm_x{kind="a"}', "dask_wasm_nan"]);
  assert.equal(m.get("dask_wasm_tasks_run_total"), 12);
  assert.equal(m.get('dask_wasm_x{kind="a"}'), 1500);
  assert.ok(Number.isNaN(m.get("dask_wasm_nan")));
  assert.throws(() => parsePrometheus("dask_wasm_bad twelve"), /non-numeric/);
  assert.throws(() => parsePrometheus("{oops} 1"), /unparsable/);
});

test("a worker that exits before registering rejects startWasmWorker with its output", async () => {
  // Port 1 on 127.0.0.1 refuses connections, and an invalid --nthreads is refused even earlier:
  // either way the process exits and the helper must report it instead of waiting.
  await assert.rejects(startWasmWorker("tcp://127.0.0.1:1", { nthreads: -3 }), (e: Error) => {
    assert.match(e.message, /exited \(code \d+, signal null\) before printing/);
    assert.match(e.message, /nthreads/);
    return true;
  });
});
