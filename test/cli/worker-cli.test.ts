// The real command, live: `node src/cli/main.ts worker <Debian dask-scheduler>` as a child
// process, started WITHOUT MALLOC_TRIM_THRESHOLD_ so the re-exec path runs. Checks the three
// stderr lines, /health and /metrics over HTTP (a task run from a Python client shows up in
// them), that the process serving is the re-run child with MALLOC_TRIM_THRESHOLD_=65536, that the
// scheduler knows the dashboard port, and that SIGTERM -> exit 0 and the scheduler forgets the
// worker. Also: usage errors exit 2 naming the flag, and the main job runs to a correct result.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runPythonClient, startScheduler, stopAll } from "../helpers/dask.ts";
import { REPO } from "../helpers/env.ts";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const MAIN_JOB = fileURLToPath(new URL("../../src/cli/main-job.ts", import.meta.url));
const TASKS = `${REPO}examples/tasks.js`;
const HELPER = `${REPO}python/`;
const READY_MS = 60_000;

const children = new Set<ChildProcess>();
after(async () => {
  // SIGTERM first: the main job and the CLI parent stop their own children on it; a SIGKILL
  // would orphan them. SIGKILL only for what is still alive after a grace period.
  await Promise.all([...children].filter((c) => c.exitCode === null && c.signalCode === null).map((c) =>
    new Promise<void>((resolve) => {
      const killer = setTimeout(() => c.kill("SIGKILL"), 10_000);
      c.once("close", () => (clearTimeout(killer), resolve()));
      c.kill("SIGTERM");
    })));
  await stopAll();
});

interface Cli {
  proc: ChildProcess;
  output: () => string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns a Node script; env without MALLOC_TRIM_THRESHOLD_ unless `env` sets it. */
function spawnNode(script: string, args: string[], env: Record<string, string> = {}): Cli {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base["MALLOC_TRIM_THRESHOLD_"];
  delete base["DASK_WASM_CLI_CHILD"];
  const proc = spawn(process.execPath, [script, ...args], { env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let text = "";
  const listeners = new Set<() => void>();
  const onData = (c: Buffer): void => {
    text += c.toString("utf8");
    for (const l of [...listeners]) l();
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("close", (code, signal) => {
      for (const l of [...listeners]) l();
      resolve({ code, signal });
    }));
  return {
    proc,
    output: () => text,
    exit,
    waitFor(re, timeoutMs = READY_MS) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${re} within ${timeoutMs} ms:\n${text}`));
        }, timeoutMs);
        const check = (): void => {
          const m = text.match(re);
          if (m) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve(m);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(new Error(`exited (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${text}`));
          }
        };
        listeners.add(check);
        check();
      });
    },
  };
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^dask_wasm_${name} (\\S+)$`, "m").exec(text);
  assert.ok(m, `metric ${name} in:\n${text}`);
  return Number(m[1]);
}

test("worker: registers, serves /health and /metrics, runs a task, leaves cleanly on SIGTERM", async () => {
  const scheduler = await startScheduler();
  const cli = spawnNode(MAIN, ["worker", scheduler.address, "--nthreads", "1", "--name", "cli-test", "--module", TASKS,
    "--listen-address", "tcp://127.0.0.1:0", "--dashboard-address", "127.0.0.1:0", "--memory-limit", "100MB"]);
  const address = (await cli.waitFor(/dask-wasm worker at: (tcp:\/\/\S+)/))[1]!;
  const dashboard = (await cli.waitFor(/dashboard at: (http:\/\/\S+)/))[1]!;
  await cli.waitFor(new RegExp(`Registered to: ${scheduler.address.replace(/\./g, "\\.")}`));

  const health = await fetch(`${dashboard}/health`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "ok");
  assert.equal((await fetch(`${dashboard}/nope`)).status, 404);
  const before = await (await fetch(`${dashboard}/metrics`)).text();
  assert.equal(metricValue(before, "tasks_run_total"), 0);
  assert.equal(metricValue(before, "memory_limit_bytes"), 100e6);
  assert.ok(metricValue(before, "rss_bytes") > 0);

  // A real task through the scheduler, and what the scheduler knows about this worker.
  const out = await runPythonClient(scheduler.address, [
    "import json",
    `sys.path.insert(0, ${JSON.stringify(HELPER)})`,
    "import dask_wasm",
    "r = client.submit(dask_wasm.js('tasks.js#inc'), 41, resources={'wasm': 1}).result()",
    "info = client.scheduler_info()['workers']",
    "pids = client.run_on_scheduler(lambda dask_scheduler: {a: ws.pid for a, ws in dask_scheduler.workers.items()})",
    "print(json.dumps({'r': r, 'workers': {a: {'name': w['name'], 'services': w['services'], 'resources': w['resources']} for a, w in info.items()}, 'pids': pids}))",
  ].join("\n"));
  const seen = JSON.parse(out.trim().split("\n").pop()!) as {
    r: number; workers: Record<string, { name: string; services: Record<string, number>; resources: Record<string, number> }>; pids: Record<string, number>;
  };
  assert.equal(seen.r, 42);
  assert.deepEqual(Object.keys(seen.workers), [address]);
  assert.equal(seen.workers[address]!.name, "cli-test");
  assert.deepEqual(seen.workers[address]!.resources, { wasm: 1 });
  assert.equal(seen.workers[address]!.services["dashboard"], Number(new URL(dashboard).port));

  const afterTask = await (await fetch(`${dashboard}/metrics`)).text();
  assert.equal(metricValue(afterTask, "tasks_run_total"), 1);
  assert.equal(metricValue(afterTask, "tasks_failed_total"), 0);

  // The worker that registered is the re-run child, with glibc's trim threshold set.
  const workerPid = seen.pids[address]!;
  assert.notEqual(workerPid, cli.proc.pid);
  const environ = (await import("node:fs")).readFileSync(`/proc/${workerPid}/environ`, "utf8").split("\0");
  assert.ok(environ.includes("MALLOC_TRIM_THRESHOLD_=65536"), "child env has MALLOC_TRIM_THRESHOLD_=65536");

  cli.proc.kill("SIGTERM");
  const exit = await cli.exit;
  assert.deepEqual(exit, { code: 0, signal: null }, cli.output());
  assert.match(cli.output(), /received SIGTERM/);
  assert.equal(existsSync(`/proc/${workerPid}`), false, "the child worker process is gone too");
  // A close-stream removes the worker at once, so the next look already sees it gone.
  const left = await runPythonClient(scheduler.address, "print(len(client.scheduler_info()['workers']))");
  assert.equal(left.trim(), "0");
  await scheduler.stop();
});

test("parent killed with SIGKILL: the re-run child sees its IPC channel drop and leaves cleanly", async () => {
  const scheduler = await startScheduler();
  // No --listen-address: like dask-worker, it listens on the IP that routes to the scheduler.
  const cli = spawnNode(MAIN, ["worker", scheduler.address, "--nthreads", "1", "--module", TASKS]);
  assert.match((await cli.waitFor(/dask-wasm worker at: (tcp:\/\/\S+)/))[1]!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const dashboard = new URL((await cli.waitFor(/dashboard at: (http:\/\/\S+)/))[1]!);
  await cli.waitFor(/Registered to:/);
  const joined = await runPythonClient(scheduler.address, "print(len(client.scheduler_info()['workers']))");
  assert.equal(joined.trim(), "1");
  // An open socket to the child's HTTP server closes when the child has shut down (no polling).
  const { connect } = await import("node:net");
  const sock = connect(Number(dashboard.port), dashboard.hostname);
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  const closed = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  sock.on("error", () => {}); // a reset at exit is as good as a close
  cli.proc.kill("SIGKILL");
  await cli.exit;
  await closed;
  // The child closed through Worker.close (close-stream), so the scheduler removed it.
  const left = await runPythonClient(scheduler.address, "print(len(client.scheduler_info()['workers']))");
  assert.equal(left.trim(), "0");
  await scheduler.stop();
});

test("an unreachable scheduler: the coded error is logged and exit 1 passes through the re-exec parent", async () => {
  // Port 1 on loopback: nothing listens there, so the connect is refused at once.
  const cli = spawnNode(MAIN, ["worker", "tcp://127.0.0.1:1", "--nthreads", "1", "--module", TASKS]);
  const exit = await cli.exit;
  assert.deepEqual(exit, { code: 1, signal: null }, cli.output());
  assert.match(cli.output(), /dask-wasm: error DASK_ERR_COMM_CONNECT: .*127\.0\.0\.1:1/);
});

test("usage errors exit 2 with the code and the flag, before anything starts", async () => {
  for (const [args, flag] of [
    [["worker", "tcp://127.0.0.1:1", "--nthreads", "zero"], "--nthreads"],
    [["worker", "tcp://127.0.0.1:1", "--module", "/nonexistent/tasks.js"], "--module"],
    [["worker", "tcp://127.0.0.1:1", "--frobnicate"], "--frobnicate"],
  ] as const) {
    const cli = spawnNode(MAIN, [...args], { MALLOC_TRIM_THRESHOLD_: "65536" });
    const exit = await cli.exit;
    assert.equal(exit.code, 2, cli.output());
    assert.match(cli.output(), new RegExp(`DASK_ERR_CONFIG: ${flag}`));
  }
});

test("main job: a real cluster runs the mixed JS/Python job to the right answer and stops everything", async () => {
  const job = spawnNode(MAIN_JOB, ["--tasks", "60"]);
  const exit = await job.exit;
  const text = job.output();
  assert.equal(exit.code, 0, text);
  const expected = Array.from({ length: 60 }, (_, i) => (i + 1) ** 2).reduce((a, b) => a + b, 0) + 1;
  assert.match(text, new RegExp(`result: ${expected} \\(expected ${expected}\\) correct`));
  assert.match(text, /job \[[^\]]*\] 100% \| 122\/122 tasks/);
  // The workers' own /metrics agree with the job: 60 + 1 JS tasks ran on dask-wasm workers.
  const runs = [...text.matchAll(/\/metrics: tasks_run_total (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(runs.length, 2);
  assert.equal(runs[0]! + runs[1]!, 61);
  // Every pid the job printed is gone.
  for (const m of text.matchAll(/pid (\d+)/g)) assert.equal(existsSync(`/proc/${m[1]}`), false, `pid ${m[1]} still running`);
});

test("main job: SIGINT mid-job stops every process and exits 130", async () => {
  // Far more tasks (60k, ~25 s) than can finish before the signal, sent once the bar has started.
  const job = spawnNode(MAIN_JOB, ["--tasks", "30000"]);
  // Generous: submitting 30k tasks takes seconds, more while the rest of `npm test` runs in parallel.
  await job.waitFor(/job \[/, 300_000);
  job.proc.kill("SIGINT");
  const exit = await job.exit;
  const text = job.output();
  assert.equal(exit.code, 130, text);
  assert.match(text, /SIGINT; stopping the cluster/);
  assert.doesNotMatch(text, /main job failed/);
  const pids = [...text.matchAll(/pid (\d+)/g)].map((m) => m[1]);
  assert.equal(pids.length, 4, text);
  for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `pid ${pid} still running`);
});

test("main job without dask: names the command that installs it and starts nothing", async () => {
  const job = spawnNode(MAIN_JOB, ["--tasks", "10"], { DASK_WASM_PYTHON: "/nonexistent/python3" });
  const exit = await job.exit;
  assert.equal(exit.code, 1, job.output());
  assert.match(job.output(), /install it with: sudo apt-get install -y python3-distributed python3-lz4/);
  assert.doesNotMatch(job.output(), /scheduler\s+tcp:/);
});
