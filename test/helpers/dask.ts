// Real dask processes for live tests: dask-scheduler, dask-worker and a Python distributed.Client
// of one DaskFlavor (Debian's 2022.12.1 by default, or a 2026.7.1 source tree), all bound to
// 127.0.0.1 with port 0. Every process started here is tracked in a registry; `stopAll()` (call it from `after()`) SIGTERMs each, then SIGKILLs what is
// still alive after a grace period. No sleeps: readiness is a log line, and every wait has an
// overall deadline that fails the test with the log tail instead of hanging.
import { spawn, type ChildProcess } from "node:child_process";
import { PYTHON } from "./env.ts";
import { tail, watchOutput } from "./output.ts";

/** Overall limit for a process to print its readiness line (the 2-core CI box needs ~2-5 s). */
const READY_TIMEOUT_MS = 60_000;
/** SIGTERM -> SIGKILL grace. */
const KILL_GRACE_MS = 5_000;

export interface DaskProcess {
  readonly proc: ChildProcess;
  /** Everything it printed so far (stdout and stderr interleaved), for failure messages. */
  readonly log: () => string;
  /** Resolves once a line matching `pattern` is printed (already printed lines count). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface Scheduler extends DaskProcess {
  readonly address: string;
}

export interface PythonWorker extends DaskProcess {
  readonly address: string;
}

/**
 * Which dask the Python processes run. 2022.12.1 is Debian's (`/usr/bin/python3 -I`, CI's).
 * 2026.7.1 is a source tree named by DASK_WASM_MODERN_PYTHONPATH (a PYTHONPATH holding dask,
 * distributed, cloudpickle, zict, partd, importlib_metadata at their 2026-compatible versions),
 * run by the same interpreter with that PYTHONPATH and `-s -P` instead of `-I` (which would
 * ignore PYTHONPATH): no user site, no script/cwd directory prepended. Neither flavor ever puts
 * the repository's python/ (dask_wasm) on a scheduler's or worker's path; client scripts add it
 * themselves (test/helpers/wasm-worker.ts scriptRunner).
 */
export interface DaskFlavor {
  readonly name: "2022.12.1" | "2026.7.1";
  /** PYTHONPATH for every Python process of this flavor (only the modern one has one). */
  readonly pythonPath?: string;
}

export const DASK_2022: DaskFlavor = { name: "2022.12.1" };
/** The variable that switches the 2026.7 live suite on. */
export const MODERN_PYTHONPATH_VAR = "DASK_WASM_MODERN_PYTHONPATH";
export const MODERN_SKIP_REASON = `${MODERN_PYTHONPATH_VAR} not set: 2026.7 live suite skipped`;

/** The 2026.7.1 flavor, or undefined when DASK_WASM_MODERN_PYTHONPATH is unset or empty. */
export function modernFlavor(env: NodeJS.ProcessEnv = process.env): DaskFlavor | undefined {
  const path = env[MODERN_PYTHONPATH_VAR];
  return path ? { name: "2026.7.1", pythonPath: path } : undefined;
}

/**
 * Every flavor a live dialect suite repeats over: 2022.12.1 always; 2026.7.1 with `skip` set
 * to the printed reason when its tree is not configured (node:test shows it as SKIP).
 */
export function flavors(): Array<{ flavor: DaskFlavor; skip: string | false }> {
  const modern = modernFlavor();
  return [
    { flavor: DASK_2022, skip: false },
    { flavor: modern ?? { name: "2026.7.1" }, skip: modern ? false : MODERN_SKIP_REASON },
  ];
}

/** Interpreter flags and extra environment of a flavor (see DaskFlavor). */
export function pythonLaunch(flavor: DaskFlavor = DASK_2022): { flags: string[]; env: Record<string, string> } {
  return flavor.pythonPath === undefined ? { flags: ["-I"], env: {} } : { flags: ["-s", "-P"], env: { PYTHONPATH: flavor.pythonPath } };
}

const running = new Set<DaskProcess>();

/** Process env: ours minus Python variables that could point at another interpreter's packages. */
function childEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
  for (const k of Object.keys(env)) if (k === "PYTHONPATH" || k === "PYTHONHOME" || k.startsWith("PYENV")) delete env[k];
  return { ...env, ...extra };
}

/** `args` are the interpreter arguments after the isolation flags, which come from `flavor`. */
function track(name: string, args: string[], env?: Record<string, string>, flavor?: DaskFlavor): DaskProcess {
  const launch = pythonLaunch(flavor);
  const proc = spawn(PYTHON, [...launch.flags, ...args], { env: childEnv({ ...launch.env, ...env }), stdio: ["ignore", "pipe", "pipe"] });
  const out = watchOutput(proc, name, READY_TIMEOUT_MS);
  const handle: DaskProcess = {
    proc,
    log: out.log,
    waitFor: out.waitFor,
    async stop(graceMs = KILL_GRACE_MS) {
      running.delete(handle);
      await out.stop(graceMs);
    },
  };
  running.add(handle);
  return handle;
}


/**
 * Starts any Python program (Debian's interpreter, `-I`) as a tracked process, e.g. the
 * reference peers in shared/protocol/probes*. With `ready`, resolves once that line is printed.
 */
export async function startPython(code: string, args: string[] = [], opts: { ready?: RegExp; env?: Record<string, string>; flavor?: DaskFlavor } = {}): Promise<DaskProcess> {
  const p = track("python", ["-c", code, ...args], opts.env, opts.flavor);
  if (opts.ready) {
    try {
      await p.waitFor(opts.ready);
    } catch (error) {
      await p.stop();
      throw error;
    }
  }
  return p;
}

export interface SchedulerOptions {
  /** Extra environment, e.g. { DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION: "inf" }. */
  env?: Record<string, string>;
  /** Extra CLI arguments. */
  args?: string[];
  /** Which dask (default 2022.12.1). */
  flavor?: DaskFlavor;
}

/** Starts `dask-scheduler` on 127.0.0.1, a free port, and waits for "Scheduler at: tcp://...". */
export async function startScheduler(opts: SchedulerOptions = {}): Promise<Scheduler> {
  const p = track(
    "dask-scheduler",
    ["-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0", ...(opts.args ?? [])],
    opts.env,
    opts.flavor,
  );
  try {
    const m = await p.waitFor(/Scheduler at:\s+(tcp:\/\/[0-9.]+:\d+)/);
    return Object.assign(p, { address: m[1]! });
  } catch (error) {
    await p.stop();
    throw error;
  }
}

export interface WorkerOptions {
  nthreads?: number;
  /** e.g. { wasm: 1 } -> --resources "wasm=1" */
  resources?: Record<string, number>;
  name?: string;
  env?: Record<string, string>;
  args?: string[];
  /** Which dask (default 2022.12.1). */
  flavor?: DaskFlavor;
}

/** Starts a Python `dask-worker --no-nanny` and waits until it is "Registered to" the scheduler. */
export async function startPythonWorker(schedulerAddress: string, opts: WorkerOptions = {}): Promise<PythonWorker> {
  const args = ["-m", "distributed.cli.dask_worker", schedulerAddress, "--no-nanny", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"];
  args.push("--nthreads", String(opts.nthreads ?? 1));
  if (opts.name !== undefined) args.push("--name", opts.name);
  if (opts.resources) args.push("--resources", Object.entries(opts.resources).map(([k, v]) => `${k}=${v}`).join(" "));
  args.push(...(opts.args ?? []));
  const p = track("dask-worker", args, opts.env, opts.flavor);
  try {
    const listening = await p.waitFor(/Start worker at:\s+(tcp:\/\/[0-9.]+:\d+)/);
    await p.waitFor(/Registered to:/);
    return Object.assign(p, { address: listening[1]! });
  } catch (error) {
    await p.stop();
    throw error;
  }
}

/**
 * Runs `code` with `client` bound to a distributed.Client connected to the scheduler, and
 * returns its stdout. The script closes the client itself; a non-zero exit rejects with stderr.
 */
export function runPythonClient(schedulerAddress: string, code: string, opts: { timeoutMs?: number; env?: Record<string, string>; flavor?: DaskFlavor } = {}): Promise<string> {
  const script = [
    "import sys",
    "from distributed import Client",
    `client = Client(${JSON.stringify(schedulerAddress)}, timeout=30)`,
    "try:",
    ...code.split("\n").map((l) => "    " + l),
    "finally:",
    "    client.close()",
  ].join("\n");
  return runPythonScript(script, [], opts);
}

/**
 * Runs a Python script (Debian's interpreter, `-I`) without blocking the event loop, so it can
 * talk to servers living in this test process. Resolves with stdout; rejects on a non-zero exit
 * (with the output tail) or after `timeoutMs`, killing the process.
 */
export async function runPythonScript(code: string, args: string[] = [], opts: { timeoutMs?: number; env?: Record<string, string>; flavor?: DaskFlavor } = {}): Promise<string> {
  const p = track("python", ["-c", code, ...args], opts.env, opts.flavor);
  let stdout = "";
  p.proc.stdout!.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  const timeoutMs = opts.timeoutMs ?? READY_TIMEOUT_MS;
  const exit = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      void p.stop();
      reject(new Error(`python did not finish within ${timeoutMs} ms:\n${tail(p.log())}`));
    }, timeoutMs);
    p.proc.once("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  running.delete(p);
  if (exit !== 0) throw new Error(`python exited ${exit}:\n${tail(p.log())}`);
  return stdout;
}

/** Stops every process this module started and has not stopped yet. For `after()` hooks. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}
