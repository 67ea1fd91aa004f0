// Task module for bench/macro/tasks.bench.ts, loaded by the dask-wasm worker with
// `--module bench/macro/tasks.js`; tasks name it "tasks.js#inc". Trivial on purpose: the
// benchmark measures the worker's per-task overhead, not the task.
export function inc(x) {
  return x + 1;
}
