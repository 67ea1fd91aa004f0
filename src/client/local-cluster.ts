// The cluster behind `Client.connect()` with no address (distributed's `Client()` ->
// `LocalCluster`): Debian's `dask-scheduler` as a child process on 127.0.0.1 (a free port) and
// dask-wasm Workers (src/worker/worker.ts) running in THIS process, all closed together.
//
// Role: start, report the scheduler address, close. Process handling (readiness from the
// scheduler's own log line, SIGTERM then SIGKILL) is src/cli/local-cluster.ts's; this file
// only composes it with in-process workers.
//
// Must not: pick a non-loopback address, sleep, or leave anything running when start fails
// half-way (every piece already started is closed before the error is rethrown). When dask is
// not importable it fails AT ONCE (no scheduler spawn, no timeout) with a ConfigError naming the
// install command, because the scheduler is the one part dask-wasm does not reimplement.
import { ConfigError, DaskError } from "../errors.ts";
import { LocalCluster as Launcher, checkDask, findPython, DASK_INSTALL_HINT } from "../cli/local-cluster.ts";
import { Worker, type WorkerOptions } from "../worker/worker.ts";

export { DASK_INSTALL_HINT };

export interface LocalClusterOptions {
  /** In-process dask-wasm workers (default 1). */
  nWorkers?: number;
  /** Threads per worker (default 1). */
  threadsPerWorker?: number;
  /** ES modules the workers may run tasks from ("tasks.js#inc" names tasks.js here). */
  modules?: string[];
  /** Per-worker resources (default the worker's own: {wasm: nthreads}). */
  resources?: Record<string, number>;
  /** Bytes per worker before spilling (default 0: no limit). */
  memoryLimit?: number;
  /** Worker names are `${namePrefix}-${i}` (default "local-wasm"). */
  namePrefix?: string;
  /** Python interpreter with dask (default: /usr/bin/python3 when present, DASK_WASM_PYTHON overrides). */
  python?: string;
  /** Extra dask-scheduler arguments. */
  schedulerArgs?: string[];
  /**
   * Extra scheduler environment. A PYTHONPATH here (e.g. a dask 2026.7 source tree) is honoured:
   * the scheduler then runs with `-s -P` instead of `-I`, which would ignore it.
   */
  schedulerEnv?: Record<string, string>;
  /** Worker log sink (default: the worker's own, warnings and errors to stderr). */
  log?: WorkerOptions["log"];
}

/** A running local cluster. `close()` stops the workers, then the scheduler. */
export interface LocalClusterHandle {
  /** tcp://127.0.0.1:PORT of the scheduler. */
  readonly schedulerAddress: string;
  /** The same as schedulerAddress (what Client.connect() connects to). */
  readonly address: string;
  /** The in-process workers now running (replacements included; see `replaced`). */
  readonly workers: readonly Worker[];
  /** Workers started to replace ones the scheduler closed (its `restart`, or removal). */
  readonly replaced: number;
  /** Scheduler pid (tests check it is gone after close). */
  readonly schedulerPid: number;
  /** Everything the scheduler printed so far (for failure messages). */
  schedulerLog(): string;
  /** Resolves once `n` workers are running (after a restart, the replacements). */
  waitForWorkers(n: number, timeoutMs?: number): Promise<void>;
  /** Idempotent: the second call returns the first call's promise. */
  close(): Promise<void>;
}

/**
 * Starts the scheduler and the workers; resolves once every worker has registered.
 * Rejects with ConfigError (code DASK_ERR_CONFIG) naming `apt-get install python3-distributed`
 * when the interpreter cannot import distributed.
 *
 * Workers the scheduler closes are replaced (same name, new port) while the cluster is open:
 * dask's `Scheduler.restart` shuts down every worker that has no nanny and then waits for the
 * same number to reconnect, "hoping an external deployment system will restart them"
 * (scheduler.py `restart`). In-process workers have no nanny, so this cluster is that system;
 * without it `client.restart()` would always time out. No replacement is tried once the
 * scheduler process has exited (nothing to register with).
 */
export async function startLocalCluster(opts: LocalClusterOptions = {}): Promise<LocalClusterHandle> {
  const python = opts.python ?? findPython();
  const missing = checkDask(python);
  if (missing !== undefined) throw new ConfigError(`Client.connect() without an address starts a local dask-scheduler, but ${missing}`);

  const launcher = new Launcher({ python });
  const scheduler = await launcher.startScheduler({ args: opts.schedulerArgs ?? [], ...(opts.schedulerEnv ? { env: opts.schedulerEnv } : {}) });
  let schedulerGone = false;
  void scheduler.exited.then(() => (schedulerGone = true));
  const workers = new Set<Worker>();
  const starting = new Set<Promise<unknown>>();
  const waiters = new Set<() => void>();
  let replaced = 0;
  let closing: Promise<void> | undefined;
  const log = opts.log;

  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  const startWorker = async (name: string): Promise<Worker> => {
    const w = new Worker({
      scheduler: scheduler.address,
      nthreads: opts.threadsPerWorker ?? 1,
      name,
      modules: opts.modules ?? [],
      listenAddress: "tcp://127.0.0.1:0",
      ...(opts.resources ? { resources: opts.resources } : {}),
      ...(opts.memoryLimit !== undefined ? { memoryLimit: opts.memoryLimit } : {}),
      ...(log ? { log } : {}),
    });
    workers.add(w);
    try {
      await w.start();
    } catch (error) {
      workers.delete(w);
      await w.close("start-failed").catch(() => {});
      throw error;
    }
    void w.closed.then(() => {
      workers.delete(w);
      if (closing !== undefined || schedulerGone) return;
      // Closed by the scheduler (restart / remove-worker): start another under the same name.
      replaced++;
      const p = startWorker(name).catch((error: unknown) => {
        // One attempt only: a scheduler that refuses us now will not accept a loop of retries.
        (log ?? ((_l: string, m: string, e?: unknown) => console.error(`[dask-wasm local cluster] ${m}`, e)))("error", `could not replace worker ${name}`, error);
      });
      starting.add(p);
      void p.finally(() => starting.delete(p));
    });
    notify();
    return w;
  };

  const stopAll = async (): Promise<void> => {
    // Replacements in flight first (they would otherwise register after we closed the rest).
    await Promise.allSettled([...starting]);
    // Workers before the scheduler: each sends close-stream and leaves cleanly.
    await Promise.all([...workers].map((w) => w.close("local-cluster-close").catch(() => {})));
    await launcher.stopAll();
  };

  try {
    const n = opts.nWorkers ?? 1;
    const prefix = opts.namePrefix ?? "local-wasm";
    // Sequential: on the 2-core CI box parallel thread-pool start-ups only compete.
    for (let i = 0; i < n; i++) await startWorker(`${prefix}-${i}`);
  } catch (error) {
    closing = stopAll();
    await closing;
    throw error;
  }

  const running = (): Worker[] => [...workers].filter((w) => w.status === "running");
  return {
    schedulerAddress: scheduler.address,
    address: scheduler.address,
    get workers() {
      return running();
    },
    get replaced() {
      return replaced;
    },
    schedulerPid: scheduler.pid,
    schedulerLog: () => scheduler.log(),
    waitForWorkers: (n, timeoutMs = 60_000) => {
      if (running().length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (running().length < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new DaskError("DASK_ERR_TIMEOUT", `local cluster: ${running().length} of ${n} workers running after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () => (closing ??= stopAll()),
  };
}
