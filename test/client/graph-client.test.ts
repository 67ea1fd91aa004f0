// LIVE: compute() through a real Client on Debian's dask-scheduler with in-process dask-wasm
// workers (startLocalCluster): the classic example gives 24 on the cluster as on the local
// schedulers, a node shared twice runs once (the task appends to a file), a failing task
// rejects compute with the task's key and remote text, and every key is released afterwards.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../../src/client/client.ts";
import { startLocalCluster, type LocalClusterHandle } from "../../src/client/local-cluster.ts";
import { compute, delayed, run, toGraph } from "../../src/client/graph.ts";
import { stopAll } from "../helpers/dask.ts";

const FIXTURE = fileURLToPath(new URL("./local-scheduler-tasks.js", import.meta.url));
const T = "local-scheduler-tasks.js#";
const add = delayed(T + "add");
const inc = delayed(T + "inc");
const mul = delayed(T + "mul");

let cluster: LocalClusterHandle | undefined;
let client: Client | undefined;
const dir = mkdtempSync(join(tmpdir(), "dask-wasm-graph-live-"));
after(async () => {
  await client?.close();
  await cluster?.close();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

async function connect(): Promise<Client> {
  cluster ??= await startLocalCluster({ nWorkers: 2, modules: [FIXTURE], namePrefix: "graph" });
  client ??= await Client.connect(cluster.schedulerAddress);
  return client;
}

test("compute with a Client: the classic example gives 24, as on every local scheduler", async () => {
  const c = await connect();
  const a = add(1, 2);
  const result = mul(add(a, 3), inc(a));
  const [v, w] = await compute(result, a, { client: c });
  assert.equal(v, 24);
  assert.equal(w, 3);
  for (const scheduler of ["sync", "threads", "processes"] as const) {
    assert.deepEqual(await compute(result, { scheduler, modules: [FIXTURE], numWorkers: 2 }), [24]);
  }
});

test("a node two tasks read runs once on the cluster; run() returns key -> value; keys are released", async () => {
  const c = await connect();
  const log = join(dir, "runs");
  const shared = delayed(T + "record")(log, "shared", 5);
  const both = add(inc(shared), mul(shared, 2));
  const out = await run(toGraph(both, shared), { client: c });
  assert.equal(out.get(both.key), 6 + 10);
  assert.equal(out.get(shared.key), 5);
  assert.deepEqual(readFileSync(log, "utf8").split("\n").filter(Boolean), ["shared"]);
  // compute released its futures: the scheduler forgets the keys (whoHas polls until it does).
  for (;;) {
    const held = await c.whoHas();
    if (!Object.keys(held).some((k) => k === both.key || k === shared.key)) break;
    await new Promise<void>((r) => setImmediate(r));
  }
});

test("a failing task rejects compute with its key and the remote text", async () => {
  const c = await connect();
  const bad = delayed(T + "fail")("live boom");
  await assert.rejects(compute(inc(bad), { client: c }), (e: Error & { key?: unknown }) => {
    assert.match(e.message, /live boom/);
    // The Client reports the key it was asked for (its dependency's failure is the cause).
    assert.ok(e.key === inc(bad).key || e.key === bad.key, `key ${String(e.key)}`);
    return true;
  });
});
