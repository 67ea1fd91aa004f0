// Node-only exports ("dask-wasm/node"): everything in the main entry plus what needs node:fs.
export * from "./index.ts";
export { DiskSpill } from "./store/disk-spill.ts";
export { Worker } from "./worker/worker.ts";
export type { WorkerOptions, WorkerMetrics } from "./worker/worker.ts";
export { delayed, compute, run, Delayed, isDelayed } from "./client/graph.ts";
export { getSync, getThreads, getProcesses } from "./client/local-scheduler.ts";
export { startLocalCluster } from "./client/local-cluster.ts";
