// Live-test helper: starts `node src/cli/main.ts worker <scheduler> …` (a dask-wasm worker) as a
// child process, waits for the CLI's readiness lines on stderr, reads its HTTP /metrics, and stops
// it with a chosen signal. Also runs the Python client scripts in test/python/ and parses the one
// JSON result line they print.
//
// Must not: sleep, leave a process behind (every child is tracked; `stopEverything()` in `after()`
// stops these and everything test/helpers/dask.ts started), or bind anything but 127.0.0.1.
// Readiness is a log line and every wait has a deadline that fails with the log tail.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./env.ts";
import { tail, watchOutput } from "./output.ts";
import { startPython, stopAll, type DaskFlavor, type DaskProcess } from "./dask.ts";

/** Overall limit for the worker to register (the 2-core box starts Node + threads in ~1-3 s). */
const READY_TIMEOUT_MS = 60_000;
/** SIGTERM -> SIGKILL grace; a graceful close should take well under this. */
const KILL_GRACE_MS = 10_000;
/**
 * Default registered module for the live tests. DASK_WASM_TEST_TASKS_JS points the tests at
 * another file (it must still be named tasks.js: tasks name it "tasks.js#<export>").
 */
export const TASKS_JS = process.env.DASK_WASM_TEST_TASKS_JS ?? REPO + "examples/tasks.js";
/** The AssemblyScript example module (built by scripts/dev.sh ensure_wasm); overridable likewise. */
export const TASKS_WASM = process.env.DASK_WASM_TEST_TASKS_WASM ?? REPO + "build/examples/tasks.wasm";
export const PYTHON_DIR = REPO + "python/";
/**
 * A second registered module the tests load beside examples/tasks.js, to look at values from
 * inside JS: `probe.js#kind` says what a task argument IS on the JS side (constructor, length),
 * `probe.js#fsum` sums any iterable of numbers (typed arrays included).
 */
export const PROBE_SOURCE = `// written by test/helpers/wasm-worker.ts for the live tests
export function kind(x) {
  const tag = Object.prototype.toString.call(x).slice(8, -1);
  return { tag, ctor: x?.constructor?.name ?? null, length: x?.length ?? null };
}
export function fsum(a) {
  let s = 0;
  for (const v of a) s += v;
  return s;
}
`;
export const SCRIPTS_DIR = REPO + "test/python/";

export interface WasmWorkerOptions {
  nthreads?: number;
  name?: string;
  /** Passed verbatim to --memory-limit ("64MB", bytes, "auto"). */
  memoryLimit?: string | number;
  /** e.g. { wasm: 1, GPU: 1 } -> --resources "wasm=1 GPU=1" (default: the worker's own). */
  resources?: Record<string, number>;
  /** Default [examples/tasks.js, probe.js]. */
  modules?: string[];
  localDirectory?: string;
  allowSource?: boolean;
  args?: string[];
  env?: Record<string, string>;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WasmWorker {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** tcp://… from "dask-wasm worker at:". */
  readonly address: string;
  /** http://… from "dashboard at:". */
  readonly dashboard: string;
  /** Everything printed so far (stdout and stderr interleaved). */
  log(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** GET /metrics, parsed: metric name (with the dask_wasm_ prefix) -> value. */
  metrics(): Promise<Map<string, number>>;
  /** GET /metrics, one value; throws if the worker does not export that name. */
  metric(name: string): Promise<number>;
  /** VmRSS of the worker process from /proc, in bytes. */
  procRss(): number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** Sends `signal` (default SIGTERM), SIGKILL after `graceMs`; resolves with how it exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitStatus>;
}

const running = new Set<WasmWorker>();
let probeDir: string | null = null;

/** Path of probe.js (PROBE_SOURCE), written once per test process into a temporary directory. */
export function probeModule(): string {
  probeDir ??= mkdtempSync(join(tmpdir(), "dask-wasm-probe-"));
  const path = join(probeDir, "probe.js");
  writeFileSync(path, PROBE_SOURCE);
  return path;
}


/** Prometheus text exposition -> name -> value (labels are kept as part of the name). */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    // `name{labels} value [timestamp]`: the value is the first field after the name part.
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/);
    if (!m) throw new Error(`unparsable metrics line: ${JSON.stringify(line)}`);
    const value = Number(m[2]);
    if (Number.isNaN(value) && m[2] !== "NaN") throw new Error(`metric ${m[1]} has a non-numeric value ${m[2]}`);
    out.set(m[1]!, value);
  }
  return out;
}

/** VmRSS of `pid` in bytes (Linux /proc). */
export function procRss(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Starts a dask-wasm worker and resolves once it printed "Registered to". */
export async function startWasmWorker(scheduler: string, opts: WasmWorkerOptions = {}): Promise<WasmWorker> {
  const args = [REPO + "src/cli/main.ts", "worker", scheduler, "--listen-address", "tcp://127.0.0.1:0", "--dashboard-address", "127.0.0.1:0"];
  for (const m of opts.modules ?? [TASKS_JS, probeModule()]) args.push("--module", m);
  if (opts.nthreads !== undefined) args.push("--nthreads", String(opts.nthreads));
  if (opts.name !== undefined) args.push("--name", opts.name);
  if (opts.memoryLimit !== undefined) args.push("--memory-limit", String(opts.memoryLimit));
  if (opts.resources) args.push("--resources", Object.entries(opts.resources).map(([k, v]) => `${k}=${v}`).join(" "));
  if (opts.localDirectory !== undefined) args.push("--local-directory", opts.localDirectory);
  if (opts.allowSource) args.push("--allow-source");
  args.push(...(opts.args ?? []));
  // MALLOC_TRIM_THRESHOLD_ set here so the CLI does not re-exec itself: the pid we signal and
  // whose RSS we read is then the worker itself, not a forwarding parent.
  const env = { ...process.env, MALLOC_TRIM_THRESHOLD_: "65536", ...opts.env };
  const proc = spawn(process.execPath, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  const out = watchOutput(proc, "dask-wasm worker", READY_TIMEOUT_MS);
  const waitFor = out.waitFor;
  const exited = new Promise<ExitStatus>((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));

  const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = KILL_GRACE_MS): Promise<ExitStatus> => {
    running.delete(handle);
    await out.stop(graceMs, signal);
    return exited;
  };

  let address = "";
  let dashboard = "";
  const handle: WasmWorker = {
    proc,
    pid: proc.pid ?? -1,
    get address() {
      return address;
    },
    get dashboard() {
      return dashboard;
    },
    log: out.log,
    waitFor,
    async metrics() {
      const res = await fetch(dashboard + "/metrics");
      if (res.status !== 200) throw new Error(`GET /metrics -> ${res.status}`);
      return parsePrometheus(await res.text());
    },
    async metric(name: string) {
      const all = await handle.metrics();
      const v = all.get(name);
      if (v === undefined) throw new Error(`worker exports no metric ${name}; has: ${[...all.keys()].join(", ")}`);
      return v;
    },
    procRss: () => procRss(proc.pid!),
    exited,
    stop,
  };
  running.add(handle);
  try {
    address = (await waitFor(/dask-wasm worker at:\s+(tcp:\/\/[0-9.]+:\d+)/))[1]!;
    dashboard = (await waitFor(/dashboard at:\s+(http:\/\/[0-9.]+:\d+)/))[1]!.replace(/\/$/, "");
    await waitFor(/Registered to:\s+tcp:\/\//);
  } catch (error) {
    await stop("SIGKILL");
    throw error;
  }
  return handle;
}

/** Stops every dask-wasm worker started here, then every process test/helpers/dask.ts started. */
export async function stopEverything(): Promise<void> {
  await Promise.all([...running].map((w) => w.stop()));
  await stopAll();
  if (probeDir) rmSync(probeDir, { recursive: true, force: true });
  probeDir = null;
}

/** Code that runs a test/python script as __main__ with python/ importable (the child runs `-I`). */
function scriptRunner(script: string): string {
  return [
    "import runpy, sys",
    `sys.path[:0] = [${JSON.stringify(PYTHON_DIR)}, ${JSON.stringify(SCRIPTS_DIR)}]`,
    `sys.argv = [${JSON.stringify(SCRIPTS_DIR + script)}] + sys.argv[1:]`,
    `runpy.run_path(sys.argv[0], run_name="__main__")`,
  ].join("\n");
}

/** The JSON object a script printed on its `RESULT ` line. */
export function resultOf(log: string): Record<string, unknown> {
  const lines = log.split("\n").filter((l) => l.startsWith("RESULT "));
  if (lines.length !== 1) throw new Error(`expected one RESULT line, found ${lines.length}:\n${tail(log)}`);
  return JSON.parse(lines[0]!.slice("RESULT ".length)) as Record<string, unknown>;
}

/**
 * Starts test/python/<script> with `config` as its JSON argument. The returned process prints
 * progress lines the test can `waitFor`; `result` resolves with its RESULT JSON once it exits 0
 * (rejects with the log tail on another exit code or after `timeoutMs`).
 */
export async function startClientScript(
  script: string,
  config: Record<string, unknown>,
  timeoutMs = 300_000,
  flavor?: DaskFlavor,
): Promise<{ proc: DaskProcess; result: Promise<Record<string, unknown>> }> {
  const p = await startPython(scriptRunner(script), [JSON.stringify(config)], { flavor });
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      void p.stop();
      reject(new Error(`${script} did not finish within ${timeoutMs} ms:\n${tail(p.log())}`));
    }, timeoutMs);
    const done = (code: number | null): void => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${script} exited ${code}:\n${tail(p.log(), 80)}`));
      try {
        resolve(resultOf(p.log()));
      } catch (error) {
        reject(error as Error);
      }
    };
    // "close", not "exit": the RESULT line may still be in the stdout pipe when "exit" fires.
    p.proc.once("close", (code) => done(code));
  });
  return { proc: p, result };
}

/** Runs test/python/<script> (with `flavor`'s dask, default 2022.12.1) to completion and returns its RESULT JSON. */
export async function runClientScript(script: string, config: Record<string, unknown>, timeoutMs?: number, flavor?: DaskFlavor): Promise<Record<string, unknown>> {
  return (await startClientScript(script, config, timeoutMs, flavor)).result;
}
