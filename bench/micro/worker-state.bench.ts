// Micro-benchmark of the pure WorkerState (suggested bench/micro/worker-state.bench.ts).
// Workloads: one trivial task's life (compute-task -> Execute -> ExecuteSuccess -> task-finished
// -> free-keys -> release-worker-data), the same with one dependency fetched from a peer, and a
// batch of 1,000 queued tasks on 4 threads. Results are checked inside the timed loop.
import { measure, formatTable, type Table } from "../harness.ts";
import { ComputeTaskEvent, ExecuteSuccessEvent, FreeKeysEvent, GatherDepSuccessEvent } from "../../src/worker/events.ts";
import { Execute, GatherDep, TaskFinishedMsg } from "../../src/worker/instructions.ts";
import { WorkerState } from "../../src/worker/state.ts";

function trivial(validate: boolean): () => number {
  const ws = new WorkerState({ address: "tcp://127.0.0.1:1", validate, logLength: 10_000 });
  let i = 0;
  return () => {
    const k = `inc-${i++}`;
    const a = ws.handleStimulus(ComputeTaskEvent.dummy(k, { stimulus_id: "c" }));
    if (!(a[0] instanceof Execute)) throw new Error("no Execute");
    const b = ws.handleStimulus(ExecuteSuccessEvent.dummy(k, i, { nbytes: 28, stimulus_id: "e" }));
    if (!(b[0] instanceof TaskFinishedMsg)) throw new Error("no task-finished");
    const c = ws.handleStimulus(new FreeKeysEvent({ keys: [k], stimulus_id: "f" }));
    if (c.length !== 1 || ws.tasks.size !== 0) throw new Error("not released");
    return 1;
  };
}

function withDep(): () => number {
  const ws = new WorkerState({ address: "tcp://127.0.0.1:1", validate: false, logLength: 10_000 });
  let i = 0;
  return () => {
    const k = `y-${i}`;
    const d = `x-${i++}`;
    const a = ws.handleStimulus(ComputeTaskEvent.dummy(k, { who_has: { [d]: ["tcp://127.0.0.1:2"] }, stimulus_id: "c" }));
    const g = a[0] as GatherDep;
    if (!(g instanceof GatherDep)) throw new Error("no GatherDep");
    const b = ws.handleStimulus(new GatherDepSuccessEvent({ worker: g.worker, total_nbytes: g.total_nbytes, data: { [d]: 1 }, stimulus_id: "g" }));
    if (!(b[1] instanceof Execute)) throw new Error("no Execute");
    ws.handleStimulus(ExecuteSuccessEvent.dummy(k, 2, { stimulus_id: "e" }));
    ws.handleStimulus(new FreeKeysEvent({ keys: [k, d], stimulus_id: "f" }));
    if (ws.tasks.size !== 0) throw new Error("not released");
    return 1;
  };
}

function batch(): () => number {
  return () => {
    const ws = new WorkerState({ address: "tcp://127.0.0.1:1", nthreads: 4, validate: false });
    const evs = Array.from({ length: 1000 }, (_, j) => ComputeTaskEvent.dummy(`t-${j}`, { priority: [0, 1, j], stimulus_id: "c" }));
    let running = ws.handleStimulus(...evs).filter((x) => x instanceof Execute) as Execute[];
    let done = 0;
    while (running.length > 0) {
      const next: Execute[] = [];
      for (const e of running) {
        for (const x of ws.handleStimulus(ExecuteSuccessEvent.dummy(e.key, 1, { stimulus_id: "e" }))) if (x instanceof Execute) next.push(x);
        done++;
      }
      running = next;
    }
    if (done !== 1000) throw new Error(`ran ${done}`);
    return 1000;
  };
}

export function run(): Table[] {
  // Warm the JIT on every path first, so the first row does not pay for it.
  for (const f of [trivial(false), trivial(true), withDep()]) for (let i = 0; i < 20_000; i++) f();
  return [
    {
      title: "WorkerState: one trivial task (compute-task, Execute, success, task-finished, free-keys)",
      baseline: "validate: false",
      rows: [measure("validate: false", trivial(false)), measure("validate: true (per stimulus)", trivial(true)), measure("with 1 dependency fetched", withDep())],
    },
    {
      title: "WorkerState: 1,000 queued tasks, nthreads 4 (per task)",
      baseline: "batch",
      rows: [measure("batch", batch(), { batches: 5 })],
    },
  ];
}

