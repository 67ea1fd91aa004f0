// LIVE: the local cluster behind `Client.connect()` with no address (src/client/local-cluster.ts):
// Debian's dask-scheduler on loopback + in-process dask-wasm Workers. A Python distributed.Client
// runs JS tasks on it (proving the in-process workers registered and compute), `close()` leaves
// no scheduler process and closed workers, and a Python without dask fails at once, naming the
// install command. dask's restart (which shuts nanny-less workers down) gets replacements.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startLocalCluster, type LocalClusterHandle } from "../../src/client/local-cluster.ts";
import { DaskError } from "../../src/errors.ts";
import { Client } from "../../src/client/client.ts";
import { createConnection } from "node:net";
import { runPythonClient, stopAll } from "../helpers/dask.ts";
import { TASKS_JS, PYTHON_DIR } from "../helpers/wasm-worker.ts";

const clusters: LocalClusterHandle[] = [];
after(async () => {
  await Promise.all(clusters.map((c) => c.close()));
  await stopAll();
});

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("two in-process workers on a loopback scheduler run JS tasks from a Python client; close() stops everything", async () => {
  const cluster = await startLocalCluster({ nWorkers: 2, modules: [TASKS_JS], namePrefix: "lc" });
  clusters.push(cluster);
  assert.match(cluster.schedulerAddress, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(cluster.workers.map((w) => w.name), ["lc-0", "lc-1"]);
  for (const w of cluster.workers) assert.match(w.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);

  const n = 40;
  const out = await runPythonClient(cluster.schedulerAddress, [
    `sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)})`,
    "import json, dask_wasm",
    "client.wait_for_workers(2, timeout=30)",
    "info = client.scheduler_info()['workers']",
    `futs = client.map(dask_wasm.js('tasks.js#inc'), range(${n}), resources={'wasm': 1})`,
    "vals = client.gather(futs)",
    "wh = client.who_has(futs)",
    "print('RESULT ' + json.dumps({'workers': {a: w['name'] for a, w in info.items()}, 'vals': vals, 'holders': sorted({a for v in wh.values() for a in v})}))",
  ].join("\n"), { timeoutMs: 120_000 });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(line, out);
  const r = JSON.parse(line.slice(7)) as { workers: Record<string, string>; vals: number[]; holders: string[] };
  assert.deepEqual(r.workers, Object.fromEntries(cluster.workers.map((w) => [w.address, w.name])));
  assert.deepEqual(r.vals, Array.from({ length: n }, (_, i) => i + 1));
  for (const h of r.holders) assert.ok(cluster.workers.some((w) => w.address === h), `${h} is not one of our workers`);
  const ran = cluster.workers.reduce((s, w) => s + w.metrics().tasksRun, 0);
  assert.ok(ran >= n, `workers ran ${ran} tasks, expected at least ${n}`);

  // dask's restart shuts down nanny-less workers and waits for as many to reconnect: the
  // cluster replaces them (same names, new addresses), so restart returns and tasks run again.
  const before = cluster.workers.map((w) => w.address);
  const out2 = await runPythonClient(cluster.schedulerAddress, [
    `sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)})`,
    "import json, dask_wasm",
    "client.restart(timeout=60)",
    "info = client.scheduler_info()['workers']",
    "v = client.submit(dask_wasm.js('tasks.js#inc'), 41, resources={'wasm': 1}).result()",
    "print('RESULT ' + json.dumps({'names': sorted(w['name'] for w in info.values()), 'addrs': sorted(info), 'v': v}))",
  ].join("\n"), { timeoutMs: 120_000 });
  const r2 = JSON.parse(out2.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7)) as { names: string[]; addrs: string[]; v: number };
  assert.equal(cluster.replaced, 2);
  assert.deepEqual(r2.names, ["lc-0", "lc-1"]);
  for (const a of r2.addrs) assert.ok(!before.includes(a), `worker ${a} was not replaced`);
  assert.deepEqual(r2.addrs, cluster.workers.map((w) => w.address).sort());
  assert.equal(r2.v, 42);

  const pid = cluster.schedulerPid;
  const all = cluster.workers;
  assert.ok(alive(pid));
  await cluster.close();
  assert.equal(alive(pid), false, "the scheduler process outlived close()");
  for (const w of all) assert.equal(w.status, "closed");
  assert.equal(cluster.workers.length, 0);
  // close() is idempotent.
  await cluster.close();
});

test("without dask it fails at once with DASK_ERR_CONFIG naming apt-get install python3-distributed", async () => {
  await assert.rejects(startLocalCluster({ python: "/nonexistent/python3" }), (e: unknown) => {
    assert.ok(e instanceof DaskError);
    assert.equal(e.code, "DASK_ERR_CONFIG");
    assert.match(e.message, /apt-get install.*python3-distributed/);
    assert.match(e.message, /\/nonexistent\/python3/);
    return true;
  });
});

/** Resolves true when something accepts TCP connections at tcp://host:port. */
function listening(address: string): Promise<boolean> {
  const m = address.match(/^tcp:\/\/([0-9.]+):(\d+)$/);
  assert.ok(m, address);
  return new Promise((resolve) => {
    const s = createConnection({ host: m[1]!, port: Number(m[2]) });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

test("Client.connect() with no address starts a local cluster and closes it with the client", async () => {
  const client = await Client.connect();
  let closed = false;
  try {
    assert.match(client.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const nc = await client.ncores();
    assert.equal(Object.keys(nc).length, 1);
    for (const a of Object.keys(nc)) assert.match(a, /^tcp:\/\/127\.0\.0\.1:/);
    // Data round trip through the in-process worker.
    const f = (await client.scatter({ a: [1, 2, 3], s: "x" })) as { result(): Promise<unknown> };
    assert.deepEqual(await f.result(), { a: [1, 2, 3], s: "x" });
    assert.ok(await listening(client.address));
    await client.close();
    closed = true;
    assert.equal(await listening(client.address), false, "the local scheduler still listens after client.close()");
  } finally {
    if (!closed) await client.close();
  }
});

test("Client.connect() with no address and no dask fails with DASK_ERR_CONFIG naming the install command", async () => {
  const saved = process.env["DASK_WASM_PYTHON"];
  process.env["DASK_WASM_PYTHON"] = "/nonexistent/python3";
  try {
    await assert.rejects(Client.connect(), (e: unknown) => {
      assert.equal((e as DaskError).code, "DASK_ERR_CONFIG");
      assert.match((e as Error).message, /apt-get install.*python3-distributed/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env["DASK_WASM_PYTHON"];
    else process.env["DASK_WASM_PYTHON"] = saved;
  }
});
