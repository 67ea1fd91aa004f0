// LIVE (issue 3, must-show 2): a Python client scatters the bytes of build/examples/tasks.wasm
// (built from examples/wasm/assembly/index.ts) and runs its exports with dask_wasm.wasm("add") /
// ("fib") on two dask-wasm workers; /metrics shows the module compiled once per worker, however
// many tasks called it. Expected results are recomputed here from the inputs.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { flavors, startScheduler, type Scheduler } from "../../helpers/dask.ts";
import { startWasmWorker, stopEverything, runClientScript, TASKS_WASM, type WasmWorker } from "../../helpers/wasm-worker.ts";

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let scheduler: Scheduler;
    let workers: WasmWorker[];
    let result: Record<string, unknown>;

    before(async () => {
      assert.ok(existsSync(TASKS_WASM), `${TASKS_WASM} is missing (scripts/dev.sh ensure_wasm builds it)`);
      scheduler = await startScheduler({ flavor });
      workers = await Promise.all([startWasmWorker(scheduler.address, { name: "wasm-a" }), startWasmWorker(scheduler.address, { name: "wasm-b" })]);
      result = await runClientScript("worker_wasm.py", { scheduler: scheduler.address, workers: workers.map((w) => w.address), wasm_path: TASKS_WASM }, undefined, flavor);
    });
    after(stopEverything);

    /** Reference Fibonacci, fib(0) = 0, fib(1) = 1 (the example's documented convention). */
    function fib(n: number): number {
      let [a, b] = [0, 1];
      for (let i = 0; i < n; i++) [a, b] = [b, a + b];
      return a;
    }

    test("wasm('add') tasks return a + b on both workers", () => {
      const adds = result.add as Array<[number, number, string, number]>;
      assert.ok(adds.length >= 4);
      for (const [a, b, w, got] of adds) assert.equal(got, a + b, `add(${a}, ${b}) on ${w}`);
      assert.deepEqual(new Set(adds.map(([, , w]) => w)), new Set(workers.map((w) => w.address)));
    });

    test("wasm('fib') tasks return fib(n) on both workers", () => {
      const fibs = result.fib as Array<[number, string, number]>;
      for (const [n, w, got] of fibs) assert.equal(got, fib(n), `fib(${n}) on ${w}`);
    });

    test("the scattered module reached the second worker by get_data", () => {
      const holders = result.who_has_module as string[];
      for (const w of workers) assert.ok(holders.includes(w.address), `module bytes on ${w.address}: ${holders}`);
    });

    test("/metrics: each worker compiled the module exactly once, and ran its tasks", async () => {
      const calls = (result.add as unknown[]).length + (result.fib as unknown[]).length;
      let ran = 0;
      for (const w of workers) {
        assert.equal(await w.metric("dask_wasm_wasm_modules_compiled_total"), 1, `compiles on ${w.address}`);
        ran += await w.metric("dask_wasm_tasks_run_total");
        assert.equal(await w.metric("dask_wasm_tasks_failed_total"), 0);
      }
      assert.equal(ran, calls);
    });
  });
}
