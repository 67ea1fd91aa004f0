// Macro benchmark (issue 3, "must show" 8): 10,000 trivial tasks through ONE dask-wasm worker
// and through ONE Python `dask-worker --nthreads 1 --no-nanny`, both registered with the same
// Debian dask-scheduler, with queuing off (DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=inf:
// with queuing on, the scheduler's own batching caps both at ~330 tasks/s and hides the
// workers; DESIGN.md "Performance"). A Python client submits client.map of
// dask_wasm.js("tasks.js#inc") (ours) or a Python inc (theirs), each restricted to its worker.
// Reported per worker: tasks/s (client wall time, submit to all done), worker CPU seconds and CPU
// µs per task (utime+stime of the worker process from /proc/<pid>/stat, read by the client
// before submitting and after the worker released every key), and idle RSS (VmRSS right after
// registration). Ratios are against Python, measured in the same run.
// Usage: node bench/macro/tasks.bench.ts [--tasks N]   (npm run bench:macro)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { environmentLine } from "../harness.ts";
import { LocalCluster, PYTHON_HELPER_DIR, checkDask } from "../../src/cli/local-cluster.ts";

const CLIENT = fileURLToPath(new URL("./tasks_client.py", import.meta.url));
const MODULE = fileURLToPath(new URL("./tasks.js", import.meta.url));

export interface WorkerResult {
  name: string;
  tasks: number;
  seconds: number;
  cpuSeconds: number;
  idleRssBytes: number;
}

/** VmRSS of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

function ratio(x: number, base: number): string {
  return base > 0 ? `${(x / base).toFixed(2)}×` : "n/a";
}

/** Markdown table, Python first (the baseline), ratios relative to it. */
export function formatResults(rows: WorkerResult[]): string {
  const base = rows.find((r) => r.name.startsWith("Python"))!;
  const lines = [
    "| worker | tasks | tasks/s | vs Python | worker CPU s | CPU µs/task | vs Python | idle RSS MB | vs Python |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const rate = r.tasks / r.seconds;
    const us = (r.cpuSeconds / r.tasks) * 1e6;
    const baseUs = (base.cpuSeconds / base.tasks) * 1e6;
    lines.push(`| ${r.name} | ${r.tasks} | ${Math.round(rate).toLocaleString("en-US")} | ${ratio(rate, base.tasks / base.seconds)} | ` +
      `${r.cpuSeconds.toFixed(2)} | ${us.toFixed(0)} | ${ratio(us, baseUs)} | ${(r.idleRssBytes / 1e6).toFixed(1)} | ${ratio(r.idleRssBytes, base.idleRssBytes)} |`);
  }
  return lines.join("\n");
}

export async function run(tasks = 10_000): Promise<WorkerResult[]> {
  const cluster = new LocalCluster();
  const problem = checkDask(cluster.python);
  if (problem) throw new Error(problem);
  const stop = (): void => void cluster.stopAll().then(() => process.exit(130));
  process.once("SIGINT", stop);
  try {
    const scheduler = await cluster.startScheduler({ env: { DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION: "inf" } });
    const theirs = await cluster.startPythonWorker(scheduler.address, { nthreads: 1, name: "bench-python" });
    const ours = await cluster.startWasmWorker(scheduler.address, ["--nthreads", "1", "--name", "bench-wasm", "--module", MODULE]);
    // The same worker with the pure-JS codecs (DASK_WASM_BACKEND=js): does the Wasm core pay
    // for itself end to end, not only in the micro-benchmarks?
    const oursJs = await cluster.startWasmWorker(scheduler.address, ["--nthreads", "1", "--name", "bench-js", "--module", MODULE], { env: { DASK_WASM_BACKEND: "js" } });
    const phases = [
      { name: "Python dask-worker 2022.12.1", kind: "python", w: theirs },
      { name: "dask-wasm worker (Wasm core)", kind: "wasm", w: ours },
      { name: "dask-wasm worker (DASK_WASM_BACKEND=js)", kind: "wasm", w: oursJs },
    ];
    // Idle: registered, nothing run yet.
    const idle = phases.map((p) => rssBytes(p.w.pid));
    const results: WorkerResult[] = [];
    // One phase at a time, each with the scheduler to itself (the others sit idle).
    for (const [i, { name, kind, w }] of phases.entries()) {
      const out = await cluster.runPythonScript(CLIENT, [scheduler.address, PYTHON_HELPER_DIR, kind, String(tasks), w.address, String(w.pid)], { timeoutMs: 900_000 });
      const r = JSON.parse(out.trim().split("\n").pop()!) as { seconds: number; cpu_seconds: number; n: number; checked: boolean };
      if (!r.checked) throw new Error(`${name}: wrong results`);
      results.push({ name, tasks: r.n, seconds: r.seconds, cpuSeconds: r.cpu_seconds, idleRssBytes: idle[i]! });
    }
    return results;
  } finally {
    process.off("SIGINT", stop);
    await cluster.stopAll();
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf("--tasks");
  const tasks = i > 0 ? Number(process.argv[i + 1]) : 10_000;
  const rows = await run(tasks);
  console.log(`## Macro: ${tasks.toLocaleString("en-US")} trivial tasks, one worker each, queuing off\n\n${environmentLine()}\n`);
  console.log(formatResults(rows));
  console.log("\ntasks/s: client wall time from submit to all done; CPU: worker process utime+stime over run + release; idle RSS: right after registration.");
}
