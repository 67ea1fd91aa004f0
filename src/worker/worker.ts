// The Node worker: WorkerCore (worker-core.ts) with Node's platform — a worker_threads executor
// (executor.ts), disk spill (store/disk-spill.ts), host facts from node:os, RSS from process and
// V8's GC (runtime/gc.node.ts). This is what `dask-wasm worker` and `dask-wasm/node` use; the
// browser and workerd builds import worker-core.ts with their own platform instead.
// Must not: hold any worker logic (it all lives in worker-core.ts).
import os from "node:os";
import { DiskSpill } from "../store/disk-spill.ts";
import { gcFunction } from "../runtime/gc.node.ts";
import { Executor } from "./executor.ts";
import { WorkerCore, type WorkerOptions, type WorkerPlatform } from "./worker-core.ts";

export type { WorkerMetrics, WorkerOptions, WorkerPlatform, PlatformSpill } from "./worker-core.ts";
export { WorkerCore } from "./worker-core.ts";

/** Node's platform for WorkerCore. */
export function nodePlatform(): WorkerPlatform {
  return {
    createExecutor: (opts) => new Executor(opts),
    createSpill: (dir) => new DiskSpill(dir),
    host: { OS: os.platform(), machine: os.arch() },
    packages: { node: process.versions.node },
    localDirectory: os.tmpdir(),
    pid: process.pid,
    rss: () => process.memoryUsage.rss(),
    gc: () => gcFunction()?.(),
  };
}

/** A dask-wasm worker on Node (`new Worker({ scheduler })`, then `start()`). */
export class Worker extends WorkerCore {
  constructor(options: WorkerOptions & { platform?: WorkerPlatform }) {
    super({ ...options, platform: options.platform ?? nodePlatform() });
  }
}
