// LIVE (issue 3, must-show 3): a JS throw (examples/tasks.js `fail`) and a Wasm trap (the
// AssemblyScript example's `trap`, an `unreachable`) each raise in a real Python client with the
// JS message in the exception text; the next task on the same worker succeeds. The message is
// unique per run so it cannot be matched by accident.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { flavors, startScheduler, type Scheduler } from "../../helpers/dask.ts";
import { startWasmWorker, stopEverything, runClientScript, TASKS_WASM, type WasmWorker } from "../../helpers/wasm-worker.ts";

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    type Outcome = { raised: boolean; value?: unknown; type?: string; mro?: string[]; text?: string; traceback?: string; status?: string };

    const MESSAGE = `boom-${randomUUID()}`;
    let scheduler: Scheduler;
    let worker: WasmWorker;
    let result: Record<string, Outcome>;

    before(async () => {
      scheduler = await startScheduler({ flavor });
      // One thread: one Wasm instance per module, so bump()'s count is that instance's.
      worker = await startWasmWorker(scheduler.address, { name: "wasm-err", nthreads: 1 });
      result = (await runClientScript("worker_errors.py", { scheduler: scheduler.address, worker: worker.address, wasm_path: TASKS_WASM, message: MESSAGE }, undefined, flavor)) as Record<string, Outcome>;
    });
    after(stopEverything);

    test("a JS throw raises in the Python client with the JS message and stack", (t) => {
      const r = result.js_throw!;
      t.diagnostic(`${r.type}: ${JSON.stringify(r.text!.slice(0, 300))}`);
      assert.equal(r.raised, true, `fail() returned ${JSON.stringify(r.value)}`);
      assert.equal(r.status, "error");
      assert.ok(r.mro!.includes("Exception"), `a real Python exception: ${r.mro}`);
      assert.ok(r.text!.includes(MESSAGE), `message in str(exception): ${r.text}`);
      // The JS stack names the module the throwing function lives in.
      assert.match(r.text! + r.traceback!, /tasks\.js/, "JS stack text in the exception or its traceback");
    });

    test("a Python function sent to a dask-wasm worker fails as a task error naming the cause", () => {
      const r = result.python_fn!;
      assert.equal(r.raised, true);
      assert.match(r.text!, /is a Python function/);
      assert.match(r.text!, /resources/);
    });

    test("the next JS task on the same worker succeeds", () => {
      assert.deepEqual(result.js_after, { raised: false, value: 42 });
    });

    test("a Wasm trap raises in the Python client with the trap message", (t) => {
      assert.deepEqual(result.wasm_before, { raised: false, value: 3.5 }, "the module works before the trap");
      const r = result.wasm_trap!;
      t.diagnostic(`${r.type}: ${JSON.stringify(r.text!.slice(0, 300))}`);
      assert.equal(r.raised, true, `trap() returned ${JSON.stringify(r.value)}`);
      assert.ok(r.mro!.includes("Exception"));
      // V8's message for an AssemblyScript unreachable() / abort.
      assert.match(r.text!, /unreachable/i, `trap text: ${r.text}`);
    });

    test("the next Wasm call on the same worker succeeds, on a rebuilt instance", () => {
      assert.deepEqual(result.wasm_after, { raised: false, value: 42 });
      // bump() counts calls per instance: the count restarting after the trap shows the trapped
      // instance was dropped; counting on before it shows calls do share one instance.
      const ok = (v: number): Outcome => ({ raised: false, value: v });
      assert.deepEqual(result.bumps_before, [ok(1), ok(2)]);
      assert.deepEqual(result.bumps_after, [ok(1), ok(2)]);
    });

    test("errors keep being reported after a trap, and /metrics counts the failures", async () => {
      assert.equal(result.js_throw2!.raised, true);
      assert.ok(result.js_throw2!.text!.includes(MESSAGE + "-again"));
      assert.deepEqual(result.js_after2, { raised: false, value: 2 });
      // Counted are the tasks that ran (12: 2 inc + 2 add + 4 bump + 2 fail + 1 trap + the Python
      // function the worker refused) and those that failed (2 throws + 1 trap + the refusal).
      assert.equal(await worker.metric("dask_wasm_tasks_failed_total"), 4);
      assert.equal(await worker.metric("dask_wasm_tasks_run_total"), 12);
      assert.equal(await worker.metric("dask_wasm_wasm_modules_compiled_total"), 1);
    });
  });
}
