// LIVE: the TypeScript Client against Debian's dask-scheduler 2022.12.1 with two dask-wasm
// workers (examples/tasks.js) and a Python dask-worker (for datasets read from Python).
// Expected values are computed here from the inputs; nothing is copied from a run.
// Waits for the scheduler to act on a stream op (a release) poll an RPC until a deadline, since
// stream ops and RPCs travel on different comms; no sleeps.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { startScheduler, startPythonWorker, runPythonClient, stopAll, type Scheduler, type PythonWorker } from "../helpers/dask.ts";
import { startWasmWorker, stopEverything, type WasmWorker } from "../helpers/wasm-worker.ts";
import { Client, Future, TaskError } from "../../src/client/client.ts";
import { DaskError } from "../../src/errors.ts";

let scheduler: Scheduler;
let wasmA: WasmWorker;
let wasmB: WasmWorker;
let py: PythonWorker;
let client: Client;

before(async () => {
  // The active memory manager may drop replicas at moments we do not control.
  scheduler = await startScheduler({ env: { DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START: "False" } });
  [wasmA, wasmB, py] = await Promise.all([
    startWasmWorker(scheduler.address, { name: "wasm-a", nthreads: 2 }),
    startWasmWorker(scheduler.address, { name: "wasm-b", nthreads: 2 }),
    startPythonWorker(scheduler.address, { name: "py", resources: { py: 1 } }),
  ]);
  client = await Client.connect(scheduler.address, { reconnectTimeoutMs: 0 });
});

after(async () => {
  await client?.close();
  await stopEverything();
  await stopAll();
});

/** Repeats `probe` (an RPC) until it returns true or `ms` pass. */
async function eventually(probe: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) if (await probe()) return;
  assert.fail(`not within ${ms} ms: ${what}`);
}

test("submit and futures as arguments: a = 1 + 2; x = a + 3; y = a + 1; sum(x, y)", async () => {
  const a = client.submit("tasks.js#add", 1, 2);
  const x = client.submit("tasks.js#add", a, 3);
  const y = client.submit("tasks.js#inc", a);
  const s = client.submit("tasks.js#sum", [x, y]);
  assert.equal(await s.result(), (1 + 2 + 3) + (1 + 2 + 1));
  assert.equal(s.status, "finished");
  assert.ok(s.done());
  assert.deepEqual(await client.gather([a, { x, y }]), [3, { x: 6, y: 4 }]);
});

test("map of 50 tasks, one key each, gathered in order", async () => {
  const inputs = Array.from({ length: 50 }, (_, i) => i * 3);
  const fs = client.map("tasks.js#inc", inputs);
  assert.equal(new Set(fs.map((f) => f.key)).size, 50);
  assert.deepEqual(await client.gather(fs), inputs.map((i) => i + 1));
});

test("a failing task rejects result() with TaskError carrying the key and the JS message", async () => {
  const f = client.submit("tasks.js#fail", "boom from the client test");
  const error = await f.result().then(() => assert.fail("resolved"), (e: unknown) => e);
  assert.ok(error instanceof TaskError, String(error));
  assert.equal(error.code, "DASK_ERR_TASK_FAILED");
  assert.equal(error.key, f.key);
  assert.match(error.remoteText, /boom from the client test/);
  assert.equal(f.status, "error");
  const ex = await f.exception();
  assert.ok(ex instanceof TaskError && /boom from the client test/.test(ex.remoteText));
  await assert.rejects(client.gather([client.submit("tasks.js#inc", 1), f]), (e: unknown) => e instanceof TaskError && e.key === f.key);
});

test("the same pure task twice shares one key; releasing both handles frees it on the scheduler", async () => {
  const n = 1000 + Math.floor(Math.random() * 1e6);
  const f1 = client.submit("tasks.js#inc", n);
  const f2 = client.submit("tasks.js#inc", n);
  assert.equal(f1.key, f2.key);
  assert.equal(await f2.result(), n + 1);
  assert.deepEqual(Object.keys(await client.whoHas(f1)), [f1.key]);
  f1.release();
  // One handle left: still held.
  assert.equal(f2.status, "finished");
  assert.equal(await f2.result(), n + 1);
  f2.release();
  await assert.rejects(f2.result(), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_FUTURE_RELEASED");
  await eventually(async () => ((await client.whoHas())[f1.key as string] ?? []).length === 0, `${f1.key} released`);
});

test("pure: false gives fresh keys; an explicit key is used as given", async () => {
  const a = client.submitWith("tasks.js#inc", [5], { pure: false });
  const b = client.submitWith("tasks.js#inc", [5], { pure: false });
  assert.notEqual(a.key, b.key);
  assert.match(a.key as string, /^inc-/);
  const c = client.submitWith("tasks.js#inc", [5], { key: "my-explicit-key" });
  assert.equal(c.key, "my-explicit-key");
  assert.deepEqual(await client.gather([a, b, c]), [6, 6, 6]);
});

test("workers restriction is honoured (the task reports where it ran)", async () => {
  const onA = client.submitWith("tasks.js#whoami", [], { workers: [wasmA.address], pure: false });
  const onB = client.submitWith("tasks.js#whoami", [], { workers: [wasmB.address], pure: false });
  assert.deepEqual(await client.gather([onA, onB]), ["wasm-a", "wasm-b"]);
  const who = await client.whoHas([onA, onB]);
  assert.deepEqual(who[onA.key as string], [wasmA.address]);
  assert.deepEqual(who[onB.key as string], [wasmB.address]);
});

test("scatter: values become futures usable as arguments; broadcast puts them on every worker", async () => {
  const [p, q] = (await client.scatter([40, [1, 2, 3]])) as Future[];
  assert.equal(p!.status, "finished");
  assert.equal(await client.submit("tasks.js#inc", p).result(), 41);
  assert.equal(await client.submit("tasks.js#sum", q).result(), 6);
  const b = (await client.scatter(7.5, { broadcast: true })) as Future;
  assert.match(b.key as string, /^float-/);
  const holders = (await client.whoHas(b))[b.key as string] ?? [];
  assert.deepEqual([...holders].sort(), [wasmA.address, wasmB.address, py.address].sort());
  assert.equal(await b.result(), 7.5);
});

test("replicate copies a result to every worker; ncores and hasWhat list all three", async () => {
  const f = client.submitWith("tasks.js#inc", [77], { workers: [wasmA.address] });
  await f.result();
  await client.replicate(f);
  await eventually(async () => ((await client.whoHas(f))[f.key as string] ?? []).length === 3, "a replica on each of the three workers");
  const cores = await client.ncores();
  assert.deepEqual(cores, { [wasmA.address]: 2, [wasmB.address]: 2, [py.address]: 1 });
  const what = await client.hasWhat();
  assert.ok(what[wasmA.address]!.includes(f.key as string) && what[wasmB.address]!.includes(f.key as string));
});

test("cancel: a task that cannot run is cancelled; result() rejects DASK_ERR_CANCELLED", async () => {
  // No worker has this resource, so the task stays pending until cancelled.
  const f = client.submitWith("tasks.js#inc", [1], { resources: { nowhere: 1 }, pure: false });
  assert.equal(f.status, "pending");
  await client.cancel(f);
  assert.equal(f.status, "cancelled");
  await assert.rejects(f.result(), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_CANCELLED");
});

test("releasing the last handle while result() waits rejects that wait with DASK_ERR_FUTURE_RELEASED", async () => {
  const f = client.submitWith("tasks.js#inc", [1], { resources: { nowhere: 1 }, pure: false });
  const waiting = f.result();
  f.release();
  await assert.rejects(waiting, (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_FUTURE_RELEASED");
});

test("result(timeoutMs) rejects DASK_ERR_TIMEOUT and leaves the future usable", async () => {
  const f = client.submitWith("tasks.js#inc", [1], { resources: { nowhere: 1 }, pure: false });
  await assert.rejects(f.result(1), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_TIMEOUT");
  assert.equal(f.status, "pending");
  await f.cancel();
});

test("datasets: plain values and futures between two TS clients and a Python client", async () => {
  const other = await Client.connect(scheduler.address, { reconnectTimeoutMs: 0 });
  try {
    const plain = { name: "plain", values: [1, 2.5, "three"], nested: { ok: true } };
    await client.publishDataset("ts-plain", plain);
    const f = client.submit("tasks.js#add", 20, 22);
    await client.publishDataset("ts-future", f);
    assert.deepEqual((await client.listDatasets()).sort(), ["ts-future", "ts-plain"]);
    assert.deepEqual(await other.getDataset("ts-plain"), plain);
    const g = await other.getDataset("ts-future");
    assert.ok(g instanceof Future);
    assert.equal(g.key, f.key);
    assert.equal(await g.result(), 42);
    await assert.rejects(client.publishDataset("ts-plain", 1), (e: unknown) => e instanceof DaskError && /ts-plain/.test(e.message));
    await client.publishDataset("ts-plain", { replaced: 1 }, { override: true });
    // Python reads what TS published, and publishes a value TS reads.
    const out = await runPythonClient(scheduler.address, [
      "import json",
      "print(json.dumps(client.get_dataset('ts-plain')))",
      "client.publish_dataset(py_plain={'from': 'python', 'xs': [1, 2, 3]})",
    ].join("\n"));
    assert.deepEqual(JSON.parse(out.trim().split("\n").pop()!), { replaced: 1 });
    assert.deepEqual(await other.getDataset("py_plain"), { from: "python", xs: [1, 2, 3] });
    await client.unpublishDataset("ts-plain");
    await client.unpublishDataset("py_plain");
    await client.unpublishDataset("ts-future");
    assert.deepEqual(await client.listDatasets(), []);
    await assert.rejects(client.getDataset("ts-plain"), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_DATASET_MISSING");
  } finally {
    await other.close();
  }
});

test("submitGraph: one update-graph for a small graph, futures for the wanted keys", async () => {
  const tag = `g${Math.floor(Math.random() * 1e9)}`;
  const tasks = new Map([
    [`${tag}-a`, { fn: "tasks.js#add", args: [1, 2], deps: [] }],
    [`${tag}-x`, { fn: "tasks.js#add", args: [`${tag}-a`, 3], deps: [`${tag}-a`] }],
    [`${tag}-y`, { fn: "tasks.js#inc", args: [`${tag}-a`], deps: [`${tag}-a`] }],
  ]);
  const out = client.submitGraph({ tasks, keys: [`${tag}-x`, `${tag}-y`] });
  assert.deepEqual([...out.keys()], [`${tag}-x`, `${tag}-y`]);
  assert.deepEqual(await client.gather([...out.values()]), [6, 4]);
});

test("reset cancels every future of the client, empties the workers of its keys and keeps them usable", async () => {
  const c = await Client.connect(scheduler.address, { reconnectTimeoutMs: 0 });
  try {
    const fs = c.map("tasks.js#inc", [101, 102, 103]);
    const stuck = c.submitWith("tasks.js#inc", [1], { resources: { nowhere: 1 }, pure: false });
    await c.gather(fs);
    const keys = fs.map((f) => f.key as string);
    await c.reset();
    for (const f of [...fs, stuck]) assert.equal(f.status, "cancelled");
    await assert.rejects(stuck.result(), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_CANCELLED");
    await eventually(async () => {
      const who = await c.whoHas();
      return keys.every((k) => (who[k] ?? []).length === 0);
    }, "the reset keys left every worker");
    assert.equal(Object.keys(await c.ncores()).length, 3);
    assert.equal(await c.submit("tasks.js#inc", 101).result(), 102);
  } finally {
    await c.close();
  }
});

test("restart cancels pending futures; 2022.12 removes workers without a nanny (no wait)", async () => {
  const lone = await startScheduler();
  const w = await startWasmWorker(lone.address, { name: "restart-me" });
  const c = await Client.connect(lone.address, { reconnectTimeoutMs: 0 });
  try {
    // Stream ops and RPCs travel on different comms: the later task's result proves the
    // scheduler has processed the earlier update-graph before restart is called.
    const f = c.submitWith("tasks.js#inc", [1], { resources: { nowhere: 1 }, pure: false });
    assert.equal(await c.submit("tasks.js#inc", 9).result(), 10);
    await c.restart({ waitForWorkers: false });
    await assert.rejects(f.result(), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_CANCELLED");
    assert.deepEqual(await c.whoHas(), {});
    await eventually(async () => Object.keys(await c.ncores()).length === 0, "the non-nanny worker removed");
  } finally {
    await c.close();
    await w.stop();
    await lone.stop();
  }
});

test("a scheduler that goes away rejects pending futures with DASK_ERR_SCHEDULER_LOST, and later calls too", async () => {
  const lone = await startScheduler();
  const c = await Client.connect(lone.address, { reconnectTimeoutMs: 0 });
  // No worker: both stay pending until the scheduler dies.
  const fs = [c.submit("tasks.js#inc", 1), c.submit("tasks.js#inc", 2)];
  const pending = c.gather(fs).then(() => assert.fail("resolved"), (e: unknown) => e);
  const single = fs[0]!.result().then(() => assert.fail("resolved"), (e: unknown) => e);
  await lone.stop();
  for (const e of [await pending, await single]) assert.ok(e instanceof DaskError && e.code === "DASK_ERR_SCHEDULER_LOST", String(e));
  assert.throws(() => c.submit("tasks.js#inc", 3), (e: unknown) => e instanceof DaskError && (e.code === "DASK_ERR_SCHEDULER_LOST" || e.code === "DASK_ERR_CLIENT_CLOSED"));
  await c.close();
});

test("values held by a Python worker come back through its pickles; a JS task there fails with Python's error text", async () => {
  const held = (await client.scatter([{ a: [1, 2, 3], b: "text" }, 2.25], { workers: [py.address] })) as Future[];
  assert.deepEqual((await client.whoHas(held[0]!))[held[0]!.key as string], [py.address]);
  assert.deepEqual(await client.gather(held), [{ a: [1, 2, 3], b: "text" }, 2.25]);
  // A dask-wasm reference is not a Python callable: the Python worker's tblib pickle is read, not run.
  const f = client.submitWith("tasks.js#inc", [1], { workers: [py.address], resources: null, pure: false });
  const error = await f.result().then(() => assert.fail("resolved"), (e: unknown) => e);
  assert.ok(error instanceof TaskError, String(error));
  assert.match(error.remoteText, /^builtins\.\w+Error: /);
  assert.doesNotMatch(error.remoteText, /unreadable/);
});

test("a Future that is garbage-collected releases its key on the scheduler", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const n = 2_000_000 + Math.floor(Math.random() * 1e6);
  // The only handle lives in this closure; once it returns, nothing references the Future.
  const key = await (async () => {
    const f = client.submit("tasks.js#inc", n);
    assert.equal(await f.result(), n + 1);
    return f.key as string;
  })();
  assert.deepEqual((await client.whoHas())[key]?.length, 1);
  await eventually(async () => {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    return ((await client.whoHas())[key] ?? []).length === 0;
  }, `${key} released after GC`);
});
