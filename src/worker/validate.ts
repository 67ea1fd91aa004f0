// Invariant checks of WorkerState (distributed 2022.12.1 `WorkerState.validate_task`,
// `validate_state`, `_validate_resources`). Pure and read-only: it never mutates the state
// (in particular it reads `dataNeeded`/`hasWhat` with .get(), never creating entries).
// Run per touched task after each transition batch and in full after each stimulus when
// `validate` is on; tests also call `validateState()` at teardown.
import type { WorkerState } from "./state.ts";
import { assert, InvalidTaskState, WAITING_FOR_DATA, type TaskState } from "./task-state.ts";

/** A dependent cannot be queued to run while this task is not in memory here. */
function assertDependentsNotReady(ws: WorkerState, ts: TaskState): void {
  for (const dep of ts.dependents) {
    assert(!ws.ready.has(dep), () => `${ts}: dependent ${dep} is ready`);
    assert(!ws.constrained.has(dep), () => `${ts}: dependent ${dep} is constrained`);
  }
}

/** memory: the value is stored and its size known (reported to the scheduler). */
function validateTaskMemory(ws: WorkerState, ts: TaskState): void {
  assert(ws.data.has(ts.id), "memory task not in data");
  assert(Number.isInteger(ts.nbytes), "memory task without integer nbytes");
  assert(ts.waitingForData.size === 0, "memory task waiting for data");
}

/** executing, long-running, and cancelled/resumed from either. */
function validateTaskExecuting(ws: WorkerState, ts: TaskState): void {
  if (ts.state === "executing" || ts.previous === "executing") {
    assert(ws.executing.has(ts), "executing task not in executing");
    assert(!ws.longRunning.has(ts), "executing task in longRunning");
  } else {
    assert(ts.state === "long-running" || ts.previous === "long-running");
    assert(!ws.executing.has(ts), "long-running task in executing");
    assert(ws.longRunning.has(ts), "long-running task not in longRunning");
  }
  // run_spec may legitimately be an opaque null task, but it was set by a compute-task.
  assert(ts.runSpec !== null, "running task without run_spec");
  assert(!ws.data.has(ts.id), "running task already in data");
  assert(ts.waitingForData.size === 0, "running task waiting for data");
  assertDependentsNotReady(ws, ts);
}

/** ready / constrained: queued in exactly one heap, inputs stored, not yet started. */
function validateTaskReady(ws: WorkerState, ts: TaskState): void {
  const restricted = Object.keys(ts.resourceRestrictions).length > 0;
  if (ts.state === "ready") {
    assert(!restricted, "ready task with resource restrictions");
    assert(ws.ready.has(ts) && !ws.constrained.has(ts), "ready task not (only) in ready");
  } else {
    assert(restricted, "constrained task without resource restrictions");
    assert(ts.state === "constrained");
    assert(!ws.ready.has(ts) && ws.constrained.has(ts), "constrained task not (only) in constrained");
  }
  assert(!ws.data.has(ts.id));
  assert(!ts.done);
  assert(ts.waitingForData.size === 0);
  for (const dep of ts.dependencies) assert(ws.data.has(dep.id), () => `dependency ${dep} not in data`);
}

/** waiting: waitingForData is exactly the dependencies whose data is not stored here. */
function validateTaskWaiting(ws: WorkerState, ts: TaskState): void {
  assert(!ws.data.has(ts.id));
  assert(!ts.done);
  assert(ws.waiting.has(ts), "waiting task not in waiting");
  assert(ts.waitingForData.size > 0, "waiting task waits for nothing");
  const expected = [...ts.dependencies].filter((d) => !ws.data.has(d.id));
  assert(expected.length === ts.waitingForData.size && expected.every((d) => ts.waitingForData.has(d)), "waitingForData != dependencies not in data");
  assertDependentsNotReady(ws, ts);
}

/** flight, and cancelled/resumed from flight. */
function validateTaskFlight(ws: WorkerState, ts: TaskState): void {
  assert(!ws.data.has(ts.id));
  assert(ws.inFlightTasks.has(ts), "flight task not in inFlightTasks");
  assertDependentsNotReady(ws, ts);
  assert(ts.comingFrom, "flight task without comingFrom");
  assert(ws.inFlightWorkers.get(ts.comingFrom)?.has(ts.id), "flight task not in inFlightWorkers[comingFrom]");
}

/** fetch: queued in the heap of every holder, never ourselves. */
function validateTaskFetch(ws: WorkerState, ts: TaskState): void {
  assert(!ws.data.has(ts.id));
  assert(!ts.whoHas.has(ws.address));
  assert(!ts.done);
  assert(ts.whoHas.size > 0, "fetch task without holders");
  for (const w of ts.whoHas) {
    assert(ws.hasWhat.get(w)?.has(ts.id), () => `hasWhat[${w}] lacks the fetch task`);
    assert(ws.dataNeeded.get(w)?.has(ts), () => `dataNeeded[${w}] lacks the fetch task`);
  }
  assertDependentsNotReady(ws, ts);
}

/** missing: no holder anywhere in our books; FindMissingEvent will ask the scheduler. */
function validateTaskMissing(ws: WorkerState, ts: TaskState): void {
  assert(!ws.data.has(ts.id));
  assert(ts.whoHas.size === 0);
  assert(!ts.done);
  for (const keys of ws.hasWhat.values()) assert(!keys.has(ts.id), "missing task in hasWhat");
  assert(ws.missingDepFlight.has(ts));
  assertDependentsNotReady(ws, ts);
}

/** cancelled: still running or transferring, so the executing/flight checks apply. */
function validateTaskCancelled(ws: WorkerState, ts: TaskState): void {
  assert(ts.next === null);
  if (ts.previous === "executing" || ts.previous === "long-running") validateTaskExecuting(ws, ts);
  else {
    assert(ts.previous === "flight");
    validateTaskFlight(ws, ts);
  }
}

/** resumed: as cancelled, plus the next step the scheduler asked for. */
function validateTaskResumed(ws: WorkerState, ts: TaskState): void {
  if (ts.previous === "executing" || ts.previous === "long-running") {
    assert(ts.next === "fetch");
    validateTaskExecuting(ws, ts);
  } else {
    assert(ts.previous === "flight");
    assert(ts.next === "waiting");
    validateTaskFlight(ws, ts);
  }
  assertDependentsNotReady(ws, ts);
}

/** released: in no queue and carrying no result; only graph links may remain. */
function validateTaskReleased(ws: WorkerState, ts: TaskState): void {
  assert(!ws.data.has(ts.id));
  assert(ts.next === null && ts.previous === null);
  for (const tss of ws.dataNeeded.values()) assert(!tss.has(ts));
  assert(!ws.executing.has(ts));
  assert(!ws.inFlightTasks.has(ts));
  assert(!ws.missingDepFlight.has(ts));
  // hasWhat may still list it: flight->cancelled->waiting leaves dependencies released with the
  // who_has their previous dependent's compute-task gave them.
  assert(ts.waitingForData.size === 0);
  assert(!ts.done);
  assert(!ts.exception);
  assert(!ts.traceback);
}

/** Check one task; failures become InvalidTaskState carrying the task's story. */
export function validateTask(ws: WorkerState, ts: TaskState): void {
  try {
    if (ws.tasks.has(ts.id)) assert(ws.tasks.get(ts.id) === ts, "two TaskState objects for one key");
    switch (ts.state) {
      case "memory": validateTaskMemory(ws, ts); break;
      case "waiting": validateTaskWaiting(ws, ts); break;
      case "missing": validateTaskMissing(ws, ts); break;
      case "cancelled": validateTaskCancelled(ws, ts); break;
      case "resumed": validateTaskResumed(ws, ts); break;
      case "ready": case "constrained": validateTaskReady(ws, ts); break;
      case "executing": case "long-running": validateTaskExecuting(ws, ts); break;
      case "flight": validateTaskFlight(ws, ts); break;
      case "fetch": validateTaskFetch(ws, ts); break;
      case "released": validateTaskReleased(ws, ts); break;
      default: break;
    }
  } catch (e) {
    throw new InvalidTaskState(ts.key, ts.state, ws.story(ts), { cause: e });
  }
}

/** Every cross-collection invariant, then every task. */
export function validateState(ws: WorkerState): void {
  // Graph links and holder bookkeeping must be symmetric: a one-sided link is how a task gets
  // stuck (waiting for something that will never tell it).
  for (const ts of ws.tasks.values()) {
    for (const worker of ts.whoHas) {
      assert(worker !== ws.address, "a task lists this worker as a holder");
      assert(ws.hasWhat.get(worker)?.has(ts.id), () => `hasWhat[${worker}] lacks ${ts}`);
    }
    for (const dep of ts.dependencies) {
      assert(ws.tasks.get(dep.id) === dep, () => `${ts}: dependency ${dep} not in tasks`);
      assert(dep.dependents.has(ts), () => `${ts} not among ${dep}'s dependents`);
    }
    for (const w of ts.waitingForData) {
      assert(ws.tasks.get(w.id) === w, () => `${ts}: waited-for ${w} not in tasks`);
      assert(WAITING_FOR_DATA.has(w.state), () => `${ts} waits for ${w}`);
    }
  }
  for (const [worker, ids] of ws.hasWhat) {
    assert(worker !== ws.address);
    for (const id of ids) {
      const ts = ws.tasks.get(id);
      assert(ts, () => `hasWhat[${worker}] lists unknown ${id}`);
      assert(ts.whoHas.has(worker), () => `${ts}: whoHas lacks ${worker}`);
    }
  }
  // fetchCount is kept incrementally by the transitions; recount it from the heaps.
  const fetchTss = new Set<TaskState>();
  for (const [worker, tss] of ws.dataNeeded) {
    for (const ts of tss) {
      fetchTss.add(ts);
      assert(ts.state === "fetch", () => `${ts} in dataNeeded`);
      assert(ts.whoHas.has(worker));
    }
  }
  assert(fetchTss.size === ws.fetchCount, () => `fetchCount ${ws.fetchCount} != ${fetchTss.size} tasks in dataNeeded`);
  for (const ts of ws.missingDepFlight) assert(ts.state === "missing");
  for (const ts of ws.ready) assert(ts.state === "ready");
  for (const ts of ws.constrained) assert(ts.state === "constrained");
  const inState = (ts: TaskState, s: "executing" | "long-running" | "flight"): boolean =>
    ts.state === s || ((ts.state === "cancelled" || ts.state === "resumed") && ts.previous === s);
  for (const ts of ws.executing) assert(inState(ts, "executing"), () => `${ts} in executing`);
  for (const ts of ws.longRunning) assert(inState(ts, "long-running"), () => `${ts} in longRunning`);
  // A scatter (update_data) may put a key in memory, or fail it, while its transfer is still
  // open; it stays in inFlightTasks until the GatherDep reports back (Python
  // `_gather_dep_done_common` docstring).
  for (const ts of ws.inFlightTasks) {
    assert(inState(ts, "flight") || ((ts.state === "memory" || ts.state === "error") && !ts.done), () => `${ts} in inFlightTasks`);
  }
  for (const ts of ws.waiting) assert(ts.state === "waiting");
  // No stale TaskState objects (a forgotten task recreated under the same key) in any collection.
  const collections = [...ws.dataNeeded.values(), ws.missingDepFlight, ws.ready, ws.constrained, ws.inFlightTasks, ws.executing, ws.longRunning, ws.waiting];
  for (const c of collections) for (const ts of c) assert(ws.tasks.get(ts.id) === ts, () => `stale ${ts}`);
  // nbytes is reported to the scheduler (memory accounting): it must equal the stored sizes.
  let expectNbytes = 0;
  for (const id of ws.data.keys()) {
    const ts = ws.tasks.get(id);
    assert(ts, () => `data holds unknown key ${id}`);
    expectNbytes += ts.nbytes ?? 0;
  }
  assert(ws.nbytes === expectNbytes, () => `nbytes=${ws.nbytes}; expected ${expectNbytes}`);
  for (const ts of ws.tasks.values()) validateTask(ws, ts);
  if (ws.transitionCounterMax !== false) assert(ws.transitionCounter < ws.transitionCounterMax);
  validateResources(ws);
}

/** available + held by running tasks == total, per resource. */
function validateResources(ws: WorkerState): void {
  const totalKeys = Object.keys(ws.totalResources).sort();
  const availKeys = Object.keys(ws.availableResources).sort();
  assert(totalKeys.join("\u0000") === availKeys.join("\u0000"), "availableResources and totalResources name different resources");
  const total: Record<string, number> = { ...ws.totalResources };
  for (const [k, v] of Object.entries(ws.availableResources)) {
    assert(v > -1e-9, () => `resource ${k} overdrawn: ${v}`);
    total[k]! -= v;
  }
  for (const ts of ws.allRunningTasks) {
    for (const [k, v] of Object.entries(ts.resourceRestrictions)) {
      assert(v >= 0);
      // Resources this worker lacks were never acquired (see #acquireResources).
      if (Object.hasOwn(total, k)) total[k]! -= v;
    }
  }
  assert(Object.values(total).every((v) => Math.abs(v) < 1e-9), () => `resources do not add up: ${JSON.stringify(total)}`);
}
