// LIVE (issue 3, must-show 7): SIGTERM to one of two dask-wasm workers in the middle of a job of
// 200 stamp tasks. The worker closes gracefully (exit 0), the scheduler removes it, the tasks it
// had (and the results it held) are rescheduled on the survivor, and the job completes: every
// result is well-formed and held by the survivor alone. "Mid-job" is a recorded fact (results
// in when the victim was gone < total), not assumed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startScheduler, type Scheduler } from "../helpers/dask.ts";
import { startWasmWorker, stopEverything, startClientScript, type WasmWorker, type ExitStatus } from "../helpers/wasm-worker.ts";

const COUNT = 200;
const MS = 50;
const KILL_AFTER = 20;

let scheduler: Scheduler;
let victim: WasmWorker;
let survivor: WasmWorker;
let victimRanBeforeKill = 0;
let victimExit: ExitStatus;
let result: Record<string, any>; // JSON from the script, checked field by field below

before(async () => {
  scheduler = await startScheduler();
  [victim, survivor] = await Promise.all([startWasmWorker(scheduler.address, { name: "victim" }), startWasmWorker(scheduler.address, { name: "survivor" })]);
  const script = await startClientScript("worker_sigterm.py", { scheduler: scheduler.address, victim: victim.address, survivor: survivor.address, count: COUNT, ms: MS, kill_after: KILL_AFTER });
  await script.proc.waitFor(/^PROGRESS \d+$/m, 120_000);
  victimRanBeforeKill = await victim.metric("dask_wasm_tasks_run_total");
  victimExit = await victim.stop("SIGTERM");
  result = await script.result;
});
after(stopEverything);

test("the SIGTERMed worker had run tasks and exited 0 (graceful close)", () => {
  assert.ok(victimRanBeforeKill > 0, "the victim ran nothing before the kill: the test would prove nothing");
  assert.deepEqual(victimExit, { code: 0, signal: null });
});

test("the scheduler removed it while the job was still running", (t) => {
  t.diagnostic(`victim had run ${victimRanBeforeKill} task(s); ${result.done_at_removal}/${COUNT} results were in when the scheduler no longer listed it`);
  assert.ok(!(result.workers_after as string[]).includes(victim.address));
  assert.ok((result.workers_after as string[]).includes(survivor.address));
  assert.ok(result.done_at_removal < COUNT, `all ${COUNT} results were already in when the victim was removed`);
  assert.match(scheduler.log(), new RegExp(`Remove worker .*${victim.address.replace(/[.:/]/g, "\\$&")}`));
});

test("the job completed on the survivor with every result well-formed", () => {
  assert.deepEqual(result.statuses, ["finished"]);
  const results = result.results as unknown[];
  assert.equal(results.length, COUNT);
  for (const r of results) {
    const o = r as { start?: unknown; stop?: unknown } | unknown[];
    const [start, stop] = Array.isArray(o) ? o : [o.start, o.stop];
    assert.equal(typeof start, "number", JSON.stringify(r));
    assert.ok((start as number) <= (stop as number), JSON.stringify(r));
  }
  assert.deepEqual(result.who_has, [survivor.address]);
});
