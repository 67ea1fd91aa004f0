// Macro benchmark (issue 5, "must show" 6): tasks/s of ONE browser tab (headless Debian
// Chromium, one Web Worker, joined through `dask-wasm gateway`) against ONE Node dask-wasm
// worker (`--nthreads 1`), both registered with the same Debian dask-scheduler in the same run,
// with queuing off (DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=inf, as bench/macro/
// tasks.bench.ts). The same Python client script (tab_client.py) runs each job restricted to one
// worker at a time: N trivial dask_wasm.js("tasks.js#inc") tasks, then M dask_wasm.wasm("add")
// tasks on build/examples/tasks.wasm. tasks/s = client wall time from submit to all done; every
// result is checked. Ratios are the tab against the Node worker.
// Usage: node bench/macro/tab.bench.ts [--js-tasks N] [--wasm-tasks M]   (npm run bench:tab)
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { environmentLine, formatTable, type Measurement } from "../harness.ts";
import { LocalCluster, PYTHON_HELPER_DIR, checkDask } from "../../src/cli/local-cluster.ts";
import { startGateway, stopGateways } from "../../test/helpers/gateway.ts";
import { launchBrowser, closeBrowsers } from "../../test/helpers/browser.ts";

const CLIENT = fileURLToPath(new URL("./tab_client.py", import.meta.url));
const MODULE = fileURLToPath(new URL("../../examples/tasks.js", import.meta.url));
const WASM = fileURLToPath(new URL("../../build/examples/tasks.wasm", import.meta.url));

interface Row {
  job: "js" | "wasm";
  worker: string;
  tasks: number;
  seconds: number;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

export async function run(jsTasks = 2_000, wasmTasks = 300): Promise<Row[]> {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing (scripts/dev.sh builds it)`);
  const cluster = new LocalCluster();
  const problem = checkDask(cluster.python);
  if (problem) throw new Error(problem);
  const stop = (): void => void Promise.all([closeBrowsers(), stopGateways(), cluster.stopAll()]).then(() => process.exit(130));
  process.once("SIGINT", stop);
  try {
    const scheduler = await cluster.startScheduler({ env: { DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION: "inf" } });
    const node = await cluster.startWasmWorker(scheduler.address, ["--nthreads", "1", "--name", "bench-node", "--module", MODULE]);
    const gateway = await startGateway(scheduler.address, { modules: [MODULE] });
    const browser = await launchBrowser();
    const tab = await browser.openTab(gateway.url, "bench-tab");
    const tabAddress = (await tab.status()).address;
    const workers = [
      { name: "browser tab (Chromium, 1 Web Worker, via gateway)", address: tabAddress },
      { name: "Node dask-wasm worker (--nthreads 1)", address: node.address },
    ];
    const rows: Row[] = [];
    // One job at a time, each with the scheduler to itself (the other worker sits idle).
    for (const [job, n] of [["js", jsTasks], ["wasm", wasmTasks]] as const) {
      for (const w of workers) {
        const out = await cluster.runPythonScript(CLIENT, [scheduler.address, PYTHON_HELPER_DIR, job, String(n), w.address, WASM], { timeoutMs: 900_000 });
        const r = JSON.parse(out.trim().split("\n").pop()!) as { seconds: number; n: number; checked: boolean };
        if (!r.checked) throw new Error(`${w.name}, ${job}: wrong results`);
        rows.push({ job, worker: w.name, tasks: r.n, seconds: r.seconds });
      }
    }
    return rows;
  } finally {
    process.off("SIGINT", stop);
    await closeBrowsers();
    await stopGateways();
    await cluster.stopAll();
  }
}

if (import.meta.main) {
  const jsTasks = arg("--js-tasks", 2_000);
  const wasmTasks = arg("--wasm-tasks", 300);
  const rows = await run(jsTasks, wasmTasks);
  console.log(`## Macro: one browser tab vs one Node dask-wasm worker, same scheduler, queuing off\n\n${environmentLine()}\n`);
  for (const [job, title] of [["js", `${jsTasks.toLocaleString("en-US")} dask_wasm.js("tasks.js#inc") tasks`], ["wasm", `${wasmTasks.toLocaleString("en-US")} dask_wasm.wasm("add") tasks (build/examples/tasks.wasm)`]] as const) {
    const ms: Measurement[] = rows.filter((r) => r.job === job).map((r) => ({ name: r.worker, opsPerSec: r.tasks / r.seconds, nsPerOp: (r.seconds / r.tasks) * 1e9 }));
    console.log(formatTable({ title, baseline: workers(rows)[1]!, rows: ms }) + "\n");
  }
  console.log("time/op and ops/s: Python client wall time from submit to all done, per task; every result checked.");
}

/** The worker names in row order (the Node worker, second, is the baseline). */
function workers(rows: Row[]): string[] {
  return [...new Set(rows.map((r) => r.worker))];
}
