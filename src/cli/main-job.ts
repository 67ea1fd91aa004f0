// The README's main job (`npm start` -> `node src/cli/main-job.ts [--tasks N]`): a real local
// cluster (Debian's dask-scheduler, two dask-wasm workers, one Python dask-worker) running one
// job that mixes JavaScript tasks on our workers with Python tasks on theirs, data crossing both
// ways through get_data. The Python client (main-job-client.py) prints progress lines; this
// process turns them into a cli-progress bar (noTTYOutput, so CI logs show it too) and prints
// the result and a summary per worker kind. Every process is stopped on exit, on error and on
// Ctrl-C. It must not contain worker logic; it only launches and reports.
import { existsSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import cliProgress from "cli-progress";
import { Command } from "commander";
import { ConfigError, DaskError } from "../errors.ts";
import { LocalCluster, PYTHON_HELPER_DIR, REPO_ROOT, checkDask } from "./local-cluster.ts";

const CLIENT_SCRIPT = fileURLToPath(new URL("./main-job-client.py", import.meta.url));
const TASKS_MODULE = `${REPO_ROOT}examples/tasks.js`;

interface WorkerTiming {
  tasks: number;
  start: number | null;
  stop: number | null;
  compute_s: number;
}

interface JobResult {
  value: number;
  expected: number;
  tasks: number;
  seconds: number;
  workers: Record<string, WorkerTiming>;
}

/** Set by Ctrl-C / SIGTERM: the signal path owns the exit (a client killed by the same Ctrl-C
 *  must not turn into a "main job failed" exit 1 while the cluster is being stopped). */
let interrupted = false;

function say(line: string): void {
  process.stdout.write(line + "\n");
}

/** Tasks, span and rate for a group of workers (from the scheduler's task stream). */
export function summarize(kind: string, addresses: readonly string[], timings: Record<string, WorkerTiming>): string {
  let tasks = 0;
  let start = Infinity;
  let stop = -Infinity;
  let compute = 0;
  for (const a of addresses) {
    const t = timings[a];
    if (!t || t.tasks === 0) continue;
    tasks += t.tasks;
    compute += t.compute_s;
    if (t.start !== null) start = Math.min(start, t.start);
    if (t.stop !== null) stop = Math.max(stop, t.stop);
  }
  const span = stop > start ? stop - start : 0;
  const rate = span > 0 ? `${Math.round(tasks / span).toLocaleString("en-US")} tasks/s over ${span.toFixed(2)} s` : "n/a";
  return `  ${kind.padEnd(22)} ${String(tasks).padStart(6)} tasks  ${rate}  (sum of task run times ${(compute * 1000).toFixed(1)} ms)`;
}

async function main(): Promise<number> {
  const program = new Command("main-job")
    .description("Runs a job across a real dask-scheduler, two dask-wasm workers and one Python worker")
    .option("--tasks <n>", "JavaScript tasks in the job (as many Python tasks follow)", "5000")
    .parse(process.argv);
  const n = Number(program.opts<{ tasks: string }>().tasks);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--tasks: '${program.opts<{ tasks: string }>().tasks}' is not a positive integer`);

  // Check Python's dask before starting anything: the one missing piece `npm start` on a machine
  // without apt rights cannot fix itself, so say exactly which command provides it.
  const cluster = new LocalCluster();
  const problem = checkDask(cluster.python);
  if (problem) {
    process.stderr.write(`main job: ${problem}\n`);
    return 1;
  }
  if (!existsSync(TASKS_MODULE)) throw new ConfigError(`the example task module ${TASKS_MODULE} is missing`);

  // Ctrl-C / SIGTERM: stop everything we started, then exit like a shell reports a signal.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\nmain job: ${sig}; stopping the cluster\n`);
    void cluster.stopAll().then(() => process.exit(sig === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // noTTYOutput: CI logs and `npm start | tee` are not terminals; without it the bar is silent
  // there. A 1 s schedule keeps such logs short (one line per second, plus the final one).
  const bar = new cliProgress.SingleBar(
    { format: "  job [{bar}] {percentage}% | {value}/{total} tasks | {duration_formatted}", noTTYOutput: true, notTTYSchedule: 1000, stream: process.stdout },
    cliProgress.Presets.shades_classic,
  );
  let barStarted = false;
  try {
    const t0 = performance.now();
    say(`main job: ${n} JavaScript tasks + ${n + 1} Python tasks + 1 JavaScript task, ${os.availableParallelism()} cores`);
    const scheduler = await cluster.startScheduler();
    say(`  scheduler          ${scheduler.address} (Debian dask-scheduler, pid ${scheduler.pid})`);
    // One thread per worker: three single-threaded workers on this 2-core kind of machine already
    // compete with the scheduler and the client; more threads would only measure contention.
    const wasm = await Promise.all([1, 2].map((i) =>
      cluster.startWasmWorker(scheduler.address, ["--nthreads", "1", "--name", `wasm-${i}`, "--module", TASKS_MODULE])));
    for (const w of wasm) say(`  dask-wasm worker   ${w.address} (pid ${w.pid}, metrics ${w.dashboard}/metrics)`);
    const py = await cluster.startPythonWorker(scheduler.address, { nthreads: 1, name: "python-1" });
    say(`  python worker      ${py.address} (dask-worker --no-nanny, pid ${py.pid})`);
    say(`  cluster up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // The client speaks a two-line protocol on stdout ("progress DONE TOTAL", "result {json}");
    // its stderr (dask's warnings, a traceback if a task failed) is passed through, indented.
    let result: JobResult | undefined;
    await cluster.runPythonScript(CLIENT_SCRIPT, [scheduler.address, PYTHON_HELPER_DIR, String(n), py.address], {
      onLine: (line, stream) => {
        const p = /^progress (\d+) (\d+)$/.exec(line);
        if (p) {
          if (!barStarted) {
            bar.start(Number(p[2]), 0);
            barStarted = true;
          }
          bar.update(Number(p[1]));
        } else if (line.startsWith("result ")) {
          result = JSON.parse(line.slice("result ".length)) as JobResult;
        } else if (stream === "stderr" && line.trim() !== "") {
          process.stderr.write(`  client: ${line}\n`);
        }
      },
    });
    // stop() renders the final 100% line; the finally below must not do it twice.
    if (barStarted) bar.stop();
    barStarted = false;
    if (!result) throw new DaskError("DASK_ERR_CHILD_PROCESS", "the client finished without a result line");
    const ok = result.value === result.expected;
    say(`result: ${result.value} (expected ${result.expected}) ${ok ? "correct" : "WRONG"}`);
    say(`tasks: ${result.tasks} in ${result.seconds.toFixed(2)} s (${Math.round(result.tasks / result.seconds).toLocaleString("en-US")} tasks/s end to end)`);
    // Rates come from the scheduler's task stream (compute start/stop per task), so they describe
    // the workers, not the client's submission or the Python start-up.
    say(summarize("dask-wasm workers (2)", wasm.map((w) => w.address), result.workers));
    say(summarize("python worker (1)", [py.address], result.workers));
    // Both dask-wasm workers should have taken a share of the JS tasks (the scheduler spreads them).
    const spread = wasm.map((w) => `${w.address.replace("tcp://", "")}: ${result!.workers[w.address]?.tasks ?? 0}`).join(", ");
    say(`  JS tasks per dask-wasm worker: ${spread}`);
    // What each dask-wasm worker says about itself (its /metrics, as a Prometheus scrape sees it).
    for (const w of wasm) {
      const text = await (await fetch(`${w.dashboard}/metrics`)).text();
      const get = (name: string): string => /^dask_wasm_(\S+) (\S+)$/m.exec(text.split("\n").find((l) => l.startsWith(`dask_wasm_${name} `)) ?? "")?.[2] ?? "?";
      say(`  ${w.address} /metrics: tasks_run_total ${get("tasks_run_total")}, transfers_out_total ${get("transfers_out_total")}, ` +
        `transfer_bytes_out_total ${get("transfer_bytes_out_total")}, transfers_in_total ${get("transfers_in_total")}, rss_bytes ${get("rss_bytes")}`);
    }
    return ok ? 0 : 1;
  } finally {
    if (barStarted) bar.stop();
    await cluster.stopAll();
  }
}

main().then(
  (code) => {
    if (!interrupted) process.exit(code);
  },
  (error: unknown) => {
    if (interrupted) return;
    const e = error as DaskError;
    process.stderr.write(`main job failed: ${e.code ? e.code + ": " : ""}${e.message ?? String(e)}\n`);
    process.exit(1);
  },
);
