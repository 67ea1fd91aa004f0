// A small launcher for a local cluster of real processes: Debian's `dask-scheduler`, dask-wasm
// workers (`node src/cli/main.ts worker …`), Python `dask-worker --no-nanny`, and Python client
// scripts. Used by the main job (main-job.ts) and the macro benchmark. Everything binds
// 127.0.0.1 on free ports (port 0, the address read back from the process's own log line).
// Every process started here is remembered until stopped; `stopAll()` sends SIGTERM and, after a
// grace period, SIGKILL, so nothing outlives the launcher. It must not decide what a job does,
// and it never sleeps: readiness is a log line, with an overall deadline naming what was missing.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DaskError } from "../errors.ts";

/** Repository root (this file is src/cli/local-cluster.ts). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The CLI entry the dask-wasm workers run. */
export const CLI_ENTRY = fileURLToPath(new URL("./main.ts", import.meta.url));
/** Where `import dask_wasm` lives for Python clients (python/dask_wasm). */
export const PYTHON_HELPER_DIR = fileURLToPath(new URL("../../python/", import.meta.url));

/** A process is ready when it prints its line; a cold 2-core machine needs a few seconds. */
const READY_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 5_000;
/** The command that provides Debian's dask 2022.12.1 (DESIGN.md "Scheduler versions"). */
export const DASK_INSTALL_HINT = "sudo apt-get install -y python3-distributed python3-lz4";

/** Debian's interpreter when present (a pyenv `python3` shim would lack dask), else PATH's. */
export function findPython(env: NodeJS.ProcessEnv = process.env): string {
  if (env["DASK_WASM_PYTHON"]) return env["DASK_WASM_PYTHON"];
  return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/** undefined when `python` imports distributed; otherwise a message naming the install command. */
export function checkDask(python: string): string | undefined {
  const r = spawnSync(python, ["-I", "-c", "import distributed, sys; print(distributed.__version__)"], { encoding: "utf8" });
  if (r.status === 0) return undefined;
  const why = r.error ? r.error.message : (r.stderr || "").trim().split("\n").pop();
  return `Python dask.distributed is not available to ${python} (${why}); install it with: ${DASK_INSTALL_HINT}`;
}

export interface ManagedProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything printed so far (stdout and stderr interleaved). */
  log(): string;
  /** Resolves with the first match of `pattern` in the output (already printed text counts). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface LaunchOptions {
  env?: Record<string, string>;
  /** Called for each complete output line (stdout and stderr), e.g. to echo or to parse progress. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

function tail(text: string, lines = 25): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** Environment for children: ours without Python variables that could point at another install. */
function childEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
  for (const k of Object.keys(env)) if (k === "PYTHONPATH" || k === "PYTHONHOME" || k.startsWith("PYENV")) delete env[k];
  return { ...env, ...extra };
}

export interface WasmWorkerHandle extends ManagedProcess {
  readonly address: string;
  readonly dashboard: string;
}

export interface PythonWorkerHandle extends ManagedProcess {
  readonly address: string;
}

export class LocalCluster {
  readonly python: string;
  #running = new Set<ManagedProcess>();

  constructor(opts: { python?: string } = {}) {
    this.python = opts.python ?? findPython();
  }

  /** Starts any program as a tracked process. */
  launch(name: string, command: string, args: string[], opts: LaunchOptions = {}): ManagedProcess {
    const proc = spawn(command, args, { env: childEnv(opts.env), stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    let done = false;
    const waiters = new Set<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
    const partial = { stdout: "", stderr: "" };
    const onData = (stream: "stdout" | "stderr") => (chunk: Buffer): void => {
      const s = chunk.toString("utf8");
      text += s;
      if (opts.onLine) {
        const lines = (partial[stream] + s).split("\n");
        partial[stream] = lines.pop()!;
        for (const line of lines) opts.onLine(line, stream);
      }
      for (const w of [...waiters]) {
        const m = text.match(w.pattern);
        if (m) {
          clearTimeout(w.timer);
          waiters.delete(w);
          w.resolve(m);
        }
      }
    };
    proc.stdout!.on("data", onData("stdout"));
    proc.stderr!.on("data", onData("stderr"));
    const exited = new Promise<number | null>((resolve) => {
      // "close" (not "exit"): all output has been read by then.
      proc.once("close", (code, signal) => {
        done = true;
        if (opts.onLine) for (const stream of ["stdout", "stderr"] as const) if (partial[stream]) opts.onLine(partial[stream], stream);
        for (const w of waiters) {
          clearTimeout(w.timer);
          w.reject(new DaskError("DASK_ERR_CHILD_PROCESS", `${name} exited (code ${code}, signal ${signal}) before printing ${w.pattern}:\n${tail(text)}`));
        }
        waiters.clear();
        resolve(code);
      });
      proc.once("error", (error) => {
        done = true;
        for (const w of waiters) {
          clearTimeout(w.timer);
          w.reject(error);
        }
        waiters.clear();
        resolve(null);
      });
    });
    const handle: ManagedProcess = {
      name,
      proc,
      pid: proc.pid ?? -1,
      log: () => text,
      exited,
      waitFor: (pattern, timeoutMs = READY_TIMEOUT_MS) => {
        const m = text.match(pattern);
        if (m) return Promise.resolve(m);
        if (done) return Promise.reject(new DaskError("DASK_ERR_CHILD_PROCESS", `${name} has exited; no ${pattern} in:\n${tail(text)}`));
        return new Promise((resolve, reject) => {
          const w = {
            pattern, resolve, reject,
            timer: setTimeout(() => {
              waiters.delete(w);
              reject(new DaskError("DASK_ERR_CHILD_PROCESS", `${name} did not print ${pattern} within ${timeoutMs} ms:\n${tail(text)}`));
            }, timeoutMs),
          };
          waiters.add(w);
        });
      },
      stop: async (graceMs = KILL_GRACE_MS) => {
        this.#running.delete(handle);
        if (done || proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill("SIGTERM");
        const killer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(killer);
      },
    };
    this.#running.add(handle);
    void exited.then(() => this.#running.delete(handle));
    return handle;
  }

  async #ready<T extends ManagedProcess>(p: ManagedProcess, patterns: RegExp[], extra: (m: RegExpMatchArray[]) => Omit<T, keyof ManagedProcess>): Promise<T> {
    try {
      const matches: RegExpMatchArray[] = [];
      for (const re of patterns) matches.push(await p.waitFor(re));
      return Object.assign(p, extra(matches)) as T;
    } catch (error) {
      await p.stop();
      throw error;
    }
  }

  /** Debian's dask-scheduler on 127.0.0.1, a free port; resolves with its tcp:// address. */
  async startScheduler(opts: LaunchOptions & { args?: string[] } = {}): Promise<ManagedProcess & { address: string }> {
    // -I ignores PYTHONPATH: a caller that sets one (a dask source tree) gets -s -P (no user site, no cwd) instead.
    const isolation = opts.env?.["PYTHONPATH"] ? ["-s", "-P"] : ["-I"];
    const p = this.launch("dask-scheduler", this.python, [
      ...isolation, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
      "--dashboard-address", "127.0.0.1:0", ...(opts.args ?? []),
    ], opts);
    return this.#ready(p, [/Scheduler at:\s+(tcp:\/\/[0-9.]+:\d+)/], ([m]) => ({ address: m![1]! }));
  }

  /** A Python `dask-worker --no-nanny`, resolved once it is registered. */
  async startPythonWorker(scheduler: string, opts: LaunchOptions & { nthreads?: number; name?: string; args?: string[] } = {}): Promise<PythonWorkerHandle> {
    const args = ["-I", "-m", "distributed.cli.dask_worker", scheduler, "--no-nanny", "--host", "127.0.0.1",
      "--dashboard-address", "127.0.0.1:0", "--nthreads", String(opts.nthreads ?? 1)];
    if (opts.name !== undefined) args.push("--name", opts.name);
    args.push(...(opts.args ?? []));
    const p = this.launch(`dask-worker${opts.name ? " " + opts.name : ""}`, this.python, args, opts);
    return this.#ready<PythonWorkerHandle>(p, [/Start worker at:\s+(tcp:\/\/[0-9.]+:\d+)/, /Registered to:/], ([m]) => ({ address: m![1]! }));
  }

  /**
   * A dask-wasm worker: this Node, the CLI entry, `worker SCHEDULER …args`. MALLOC_TRIM_THRESHOLD_
   * is set here so the CLI does not re-run itself: the pid we hold is the worker's own (the
   * benchmark reads its CPU time and RSS from /proc/<pid>).
   */
  async startWasmWorker(scheduler: string, args: string[], opts: LaunchOptions = {}): Promise<WasmWorkerHandle> {
    const p = this.launch(`dask-wasm worker${args.includes("--name") ? " " + args[args.indexOf("--name") + 1] : ""}`, process.execPath,
      [CLI_ENTRY, "worker", scheduler, "--listen-address", "tcp://127.0.0.1:0", "--dashboard-address", "127.0.0.1:0", ...args],
      { ...opts, env: { MALLOC_TRIM_THRESHOLD_: "65536", ...opts.env } });
    return this.#ready<WasmWorkerHandle>(p, [/dask-wasm worker at:\s+(tcp:\/\/\S+)/, /dashboard at:\s+(http:\/\/\S+)/, /Registered to:/],
      ([a, d]) => ({ address: a![1]!, dashboard: d![1]! }));
  }

  /**
   * Runs a Python script file (Debian's interpreter, -I) to completion. Resolves with its stdout;
   * rejects with the output tail on a non-zero exit or after `timeoutMs` (then it is killed).
   */
  async runPythonScript(file: string, args: string[], opts: LaunchOptions & { timeoutMs?: number } = {}): Promise<string> {
    const p = this.launch("python client", this.python, ["-I", file, ...args], opts);
    let stdout = "";
    p.proc.stdout!.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), opts.timeoutMs ?? 600_000)));
    const code = await Promise.race([p.exited, timeout]);
    clearTimeout(timer);
    if (code === "timeout") {
      await p.stop();
      throw new DaskError("DASK_ERR_CHILD_PROCESS", `${file} did not finish within ${opts.timeoutMs} ms:\n${tail(p.log())}`);
    }
    if (code !== 0) throw new DaskError("DASK_ERR_CHILD_PROCESS", `${file} exited with ${code}:\n${tail(p.log())}`);
    return stdout;
  }

  /** Stops every process still running, workers before the scheduler (they leave cleanly). */
  async stopAll(graceMs = KILL_GRACE_MS): Promise<void> {
    const all = [...this.#running];
    const schedulers = all.filter((p) => p.name === "dask-scheduler");
    await Promise.all(all.filter((p) => !schedulers.includes(p)).map((p) => p.stop(graceMs)));
    await Promise.all(schedulers.map((p) => p.stop(graceMs)));
  }

  get running(): number {
    return this.#running.size;
  }
}
