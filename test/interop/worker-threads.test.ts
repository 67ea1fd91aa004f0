// LIVE (issue 3, must-show 5): with --nthreads 2 two tasks run at the same time. The evidence is
// the [start, stop] stamps the tasks record themselves (examples/tasks.js `stamp`): the two
// intervals overlap. No duration is compared with a threshold. The control worker with
// --nthreads 1 gets the same two tasks and its intervals must NOT overlap, so the overlap check
// can fail and does on a serial worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startScheduler, type Scheduler } from "../helpers/dask.ts";
import { startWasmWorker, stopEverything, runClientScript, type WasmWorker } from "../helpers/wasm-worker.ts";

let scheduler: Scheduler;
let parallel: WasmWorker;
let serial: WasmWorker;
let result: Record<string, unknown[]>;

before(async () => {
  scheduler = await startScheduler();
  [parallel, serial] = await Promise.all([
    startWasmWorker(scheduler.address, { name: "par", nthreads: 2 }),
    startWasmWorker(scheduler.address, { name: "ser", nthreads: 1 }),
  ]);
  result = (await runClientScript("worker_threads.py", { scheduler: scheduler.address, parallel: parallel.address, serial: serial.address, ms: 300 })) as Record<string, unknown[]>;
});
after(stopEverything);

/** [start, stop] from a stamp result: an object with start/stop, or a [start, stop] pair. */
function interval(stampResult: unknown): [number, number] {
  const r = stampResult as { start?: unknown; stop?: unknown } | unknown[];
  const [start, stop] = Array.isArray(r) ? r : [r.start, r.stop];
  assert.equal(typeof start, "number", `stamp result ${JSON.stringify(stampResult)}`);
  assert.equal(typeof stop, "number", `stamp result ${JSON.stringify(stampResult)}`);
  assert.ok((start as number) <= (stop as number));
  return [start as number, stop as number];
}

function overlap([s1, e1]: [number, number], [s2, e2]: [number, number]): boolean {
  return s1 < e2 && s2 < e1;
}

test("--nthreads 2: the two stamp intervals overlap", (t) => {
  assert.equal(result.parallel!.length, 2);
  const [a, b] = result.parallel!.map(interval) as [[number, number], [number, number]];
  t.diagnostic(`nthreads 2 intervals (ms since epoch): ${JSON.stringify([a, b])}`);
  assert.ok(overlap(a, b), `intervals ${JSON.stringify([a, b])} do not overlap`);
});

test("--nthreads 1 (control): the two stamp intervals do not overlap", () => {
  const [a, b] = result.serial!.map(interval) as [[number, number], [number, number]];
  assert.ok(!overlap(a, b), `intervals ${JSON.stringify([a, b])} overlap on a one-thread worker`);
});

test("the worker advertised resources={'wasm': nthreads}", async () => {
  const out = await runClientScript("scheduler_info.py", { scheduler: scheduler.address });
  const workers = out.workers as Record<string, { resources: Record<string, number>; nthreads: number }>;
  assert.deepEqual(workers[parallel.address]!.resources, { wasm: 2 });
  assert.equal(workers[parallel.address]!.nthreads, 2);
  assert.deepEqual(workers[serial.address]!.resources, { wasm: 1 });
});
