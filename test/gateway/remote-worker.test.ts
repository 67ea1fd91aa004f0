// LIVE: a Node dask-wasm worker that reaches the cluster ONLY through the gateway
// (test/fixtures/remote-node-worker.ts, a child process: startRemoteWorker replaces the "tcp"
// transport of its whole process). The gateway runs in this process in front of Debian's
// dask-scheduler, beside a real Python dask-worker. A Python client runs dask_wasm.js tasks on
// the remote worker; a Python task consumes a value the remote worker holds (the Python worker's
// get_data goes to the gateway's address for it and is relayed over the WebSocket), and a remote
// task consumes a value the Python worker holds (the remote worker OPENs the Python worker, which
// the gateway allows after asking the scheduler who its workers are). Then the gateway goes away:
// the worker must close, leave the scheduler, and its process end by itself.
//
// No sleeps: readiness and departure are log lines, each wait with a deadline.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { Gateway } from "../../src/gateway/gateway.node.ts";
import { startScheduler, startPythonWorker, runPythonClient, stopAll, type Scheduler, type PythonWorker } from "../helpers/dask.ts";
import { REPO } from "../helpers/env.ts";

const WAIT_MS = 60_000;
const FIXTURE = REPO + "test/fixtures/remote-node-worker.ts";

interface Child {
  proc: ChildProcess;
  log(): string;
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(args: string[]): Child {
  const proc = spawn(process.execPath, [FIXTURE, ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const onData = (c: Buffer): void => {
    text += c.toString("utf8");
    for (const w of [...waiters]) {
      const m = text.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  return {
    proc,
    log: () => text,
    exited,
    waitFor(re) {
      const m = text.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the remote worker did not print ${re} within ${WAIT_MS} ms:\n${text}`)), WAIT_MS);
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          const late = text.match(re);
          if (late) resolve(late);
          else reject(new Error(`the remote worker exited (${code ?? signal}) without printing ${re}:\n${text}`));
        });
        waiters.push({ re, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}

/** Resolves with the exit status, or with "still running" after `ms` (a deadline, not a sleep). */
function exitWithin(child: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | "still running"> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([child.exited.finally(() => clearTimeout(timer)), new Promise<"still running">((r) => (timer = setTimeout(() => r("still running"), ms)))]);
}

let scheduler: Scheduler;
let py: PythonWorker;
let gateway: Gateway;
let child: Child;
let remoteAddress: string;
const gatewayLog: string[] = [];

before(async () => {
  scheduler = await startScheduler({ env: { DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START: "False" } });
  gateway = new Gateway({ scheduler: scheduler.address, log: (level, m) => gatewayLog.push(`${level}: ${m}`) });
  const url = await gateway.start();
  [py, child] = await Promise.all([startPythonWorker(scheduler.address, { name: "py", resources: { py: 1 } }), Promise.resolve(startChild([url, "remote-node"]))]);
  remoteAddress = (await child.waitFor(/remote worker at: (tcp:\/\/[0-9.]+:\d+)/))[1]!;
  await scheduler.waitFor(new RegExp(`Register worker <WorkerState '${remoteAddress.replace(/\./g, "\\.")}'`), WAIT_MS);
});

after(async () => {
  if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
    child.proc.kill("SIGKILL");
    await child.exited;
  }
  await gateway?.close();
  await stopAll();
});

test("the remote worker's address is the gateway's listener for it (/status), and it registered under it", async () => {
  const status = (await (await fetch(gateway.url + "/status")).json()) as { workers: Array<{ address: string; channels: number }> };
  const mine = status.workers.find((w) => w.address === remoteAddress);
  assert.ok(mine, `/status lists ${remoteAddress}: ${JSON.stringify(status)}`);
  assert.ok(mine.channels >= 1, "its scheduler connection is a channel");
});

test("a Python client runs js tasks on it, and data crosses the gateway both ways with a Python worker", async () => {
  const xs = Array.from({ length: 40 }, (_, i) => i * 3 - 5);
  const out = await runPythonClient(
    scheduler.address,
    [
      `sys.path.insert(0, ${JSON.stringify(REPO + "python")})`,
      "import json, dask_wasm",
      "inc = dask_wasm.js('tasks.js#inc')",
      "W = {'wasm': 1}",
      "def py_double(x):",
      "    return x * 2",
      `xs = ${JSON.stringify(xs)}`,
      "futs = client.map(inc, xs, resources=W)",
      "vals = client.gather(futs)",
      "ran_on = sorted({w for ws in client.who_has(futs).values() for w in ws})",
      // remote -> Python: the Python worker get_data's 'held-by-remote' from the gateway's address
      "a = client.submit(inc, 10, resources=W, key='held-by-remote')",
      "b = client.submit(py_double, a, resources={'py': 1}, key='py-consumes')",
      "bv = b.result()",
      // Python -> remote: the remote worker fetches 'held-by-py' through an OPEN to the Python worker
      "c = client.submit(py_double, 21, resources={'py': 1}, key='held-by-py')",
      "d = client.submit(inc, c, resources=W, key='remote-consumes')",
      "dv = d.result()",
      "wh = {k: sorted(v) for k, v in client.who_has([a, b, c, d]).items()}",
      "print('RESULT ' + json.dumps({'vals': vals, 'ran_on': ran_on, 'bv': bv, 'dv': dv, 'who_has': wh}))",
    ].join("\n"),
    { timeoutMs: WAIT_MS },
  );
  const r = JSON.parse(out.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7)) as {
    vals: number[];
    ran_on: string[];
    bv: number;
    dv: number;
    who_has: Record<string, string[]>;
  };
  assert.deepEqual(r.vals, xs.map((x) => x + 1));
  assert.deepEqual(r.ran_on, [remoteAddress], "every js task ran on the remote worker");
  assert.equal(r.bv, (10 + 1) * 2);
  assert.equal(r.dv, 21 * 2 + 1);
  assert.ok(r.who_has["held-by-remote"]!.includes(remoteAddress), JSON.stringify(r.who_has));
  assert.ok(r.who_has["held-by-remote"]!.includes(py.address), `the Python worker fetched it through the gateway: ${JSON.stringify(r.who_has)}`);
  assert.deepEqual(r.who_has["py-consumes"], [py.address]);
  assert.ok(r.who_has["held-by-py"]!.includes(remoteAddress), `the remote worker fetched it through the gateway: ${JSON.stringify(r.who_has)}`);
  assert.deepEqual(r.who_has["remote-consumes"], [remoteAddress]);
});

test("24 MB arrays cross the gateway both ways (remote -> Python worker, Python worker -> remote)", async () => {
  const n = 3_000_000;
  const out = await runPythonClient(
    scheduler.address,
    [
      `sys.path.insert(0, ${JSON.stringify(REPO + "python")})`,
      "import json, dask_wasm",
      "import numpy as np",
      "W = {'wasm': 1}",
      "P = {'py': 1}",
      "def py_sum(a):",
      "    return [type(a).__name__, str(a.dtype), int(a.size), float(a.sum())]",
      "def py_arange(n):",
      "    return np.arange(n, dtype='float64')",
      `big = client.submit(dask_wasm.js('tasks.js#typed'), ${n}, resources=W, key='big-on-remote')`,
      "seen = client.submit(py_sum, big, resources=P, key='py-sums-big').result()",
      `arr = client.submit(py_arange, ${n}, resources=P, key='big-on-py')`,
      "js_total = client.submit(dask_wasm.js('tasks.js#sum'), arr, resources=W, key='remote-sums-big').result()",
      "print('RESULT ' + json.dumps({'seen': seen, 'js_total': js_total}))",
    ].join("\n"),
    { timeoutMs: WAIT_MS },
  );
  const r = JSON.parse(out.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7)) as { seen: [string, string, number, number]; js_total: number };
  // typed(n) = [0, 0.5, 1, ...]: sum = n(n-1)/4; arange(n) sums to n(n-1)/2 (exact in float64 here).
  assert.deepEqual(r.seen, ["ndarray", "float64", n, (n * (n - 1)) / 4]);
  assert.equal(r.js_total, (n * (n - 1)) / 2);
});

test("the gateway going away closes the remote worker: it leaves the scheduler and its process ends by itself", async () => {
  await gateway.close();
  await child.waitFor(/link closed: DASK_ERR_GATEWAY_CLOSED/);
  await child.waitFor(/worker closed: closed/);
  await scheduler.waitFor(new RegExp(`Remove worker <WorkerState '${remoteAddress.replace(/\./g, "\\.")}'`), WAIT_MS);
  const exit = await exitWithin(child, WAIT_MS);
  assert.deepEqual(exit, { code: 0, signal: null }, `the process did not end cleanly by itself:\n${child.log()}`);
});
