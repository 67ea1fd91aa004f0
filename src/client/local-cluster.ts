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
import { ConfigError } from "../errors.ts";
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
  /** Worker log sink (default: the worker's own, warnings and errors to stderr). */
  log?: WorkerOptions["log"];
}

/** A running local cluster. `close()` stops the workers, then the scheduler. */
export interface LocalClusterHandle {
  /** tcp://127.0.0.1:PORT of the scheduler. */
  readonly schedulerAddress: string;
  /** The in-process workers (their `address`, `name`, `metrics()`). */
  readonly workers: readonly Worker[];
  /** Scheduler pid (tests check it is gone after close). */
  readonly schedulerPid: number;
  /** Everything the scheduler printed so far (for failure messages). */
  schedulerLog(): string;
  /** Idempotent: the second call returns the first call's promise. */
  close(): Promise<void>;
}

/**
 * Starts the scheduler and the workers; resolves once every worker has registered.
 * Rejects with ConfigError (code DASK_ERR_CONFIG) naming `apt-get install python3-distributed`
 * when the interpreter cannot import distributed.
 */
export async function startLocalCluster(opts: LocalClusterOptions = {}): Promise<LocalClusterHandle> {
  const python = opts.python ?? findPython();
  const missing = checkDask(python);
  if (missing !== undefined) throw new ConfigError(`Client.connect() without an address starts a local dask-scheduler, but ${missing}`);

  const launcher = new Launcher({ python });
  const scheduler = await launcher.startScheduler({ args: opts.schedulerArgs ?? [] });
  const workers: Worker[] = [];
  const stopAll = async (): Promise<void> => {
    // Workers first: each sends close-stream and leaves cleanly while the scheduler still runs.
    await Promise.all(workers.map((w) => w.close("local-cluster-close").catch(() => {})));
    await launcher.stopAll();
  };
  try {
    const n = opts.nWorkers ?? 1;
    for (let i = 0; i < n; i++) {
      const w = new Worker({
        scheduler: scheduler.address,
        nthreads: opts.threadsPerWorker ?? 1,
        name: `${opts.namePrefix ?? "local-wasm"}-${i}`,
        modules: opts.modules ?? [],
        listenAddress: "tcp://127.0.0.1:0",
        ...(opts.resources ? { resources: opts.resources } : {}),
        ...(opts.memoryLimit !== undefined ? { memoryLimit: opts.memoryLimit } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      workers.push(w);
      // Sequential: on the 2-core CI box parallel thread-pool start-ups only compete.
      await w.start();
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    schedulerAddress: scheduler.address,
    workers,
    schedulerPid: scheduler.pid,
    schedulerLog: () => scheduler.log(),
    close: () => (closing ??= stopAll()),
  };
}
