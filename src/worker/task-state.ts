// Worker-side task record, task-state vocabulary, the priority HeapSet and the state machine's
// coded errors. Pure: no IO, no clocks, no randomness.
//
// Transliterated from distributed 2022.12.1 `worker_state_machine.py` (`TaskState`, `HeapSet` from
// `distributed/collections.py`, `InvalidTransition`, `InvalidTaskState`). Python attribute names
// become camelCase (`who_has` -> `whoHas`); wire-facing values keep their wire shape.
// Not to be confused with the scheduler's TaskState: this one only knows what THIS worker holds,
// fetches or runs.
import { DaskError } from "../errors.ts";
import { keyId, type Key } from "../protocol/values.ts";

/** Every state a worker-side task can be in (Python `TaskStateState`). "rescheduled" and
 *  "forgotten" are transient targets: no task rests in "rescheduled". */
export type TaskStateState =
  | "cancelled"
  | "constrained"
  | "error"
  | "executing"
  | "fetch"
  | "flight"
  | "forgotten"
  | "long-running"
  | "memory"
  | "missing"
  | "ready"
  | "released"
  | "rescheduled"
  | "resumed"
  | "waiting";

export const TASK_STATES: readonly TaskStateState[] = [
  "cancelled", "constrained", "error", "executing", "fetch", "flight", "forgotten", "long-running",
  "memory", "missing", "ready", "released", "rescheduled", "resumed", "waiting",
];

/** States in which the task is (or will be) computed here; protects its dependencies. */
export const PROCESSING: ReadonlySet<TaskStateState> = new Set<TaskStateState>([
  "waiting", "ready", "constrained", "executing", "long-running", "cancelled", "resumed",
]);
/** Waiting only for a free thread (and, for constrained, resources). */
export const READY: ReadonlySet<TaskStateState> = new Set<TaskStateState>(["ready", "constrained"]);
/** Valid states for a task found in some other task's `waitingForData`. */
export const WAITING_FOR_DATA: ReadonlySet<TaskStateState> = new Set<TaskStateState>([
  "constrained", "executing", "fetch", "flight", "long-running", "missing", "ready", "resumed", "waiting",
]);

/** One compute/transfer interval, as sent in task-finished `startstops` (wire shape). */
export interface StartStop {
  action: string;
  start: number;
  stop: number;
  source?: string;
}

/** What the scheduler sent as the task body. Opaque here: the shell interprets it (pickle VM,
 *  registered export, ...). 2022 Python tasks arrive as function/args/kwargs; everything else
 *  (2022 opaque run_spec, 2026 pickled `Task`) as `task`. */
export interface SerializedTask {
  function?: unknown;
  args?: unknown;
  kwargs?: unknown;
  task?: unknown;
}

/** Python's `parse_bytes(dask.config.get("distributed.scheduler.default-data-size"))`: 1 KiB. */
export const DEFAULT_DATA_SIZE = 1024;

/**
 * Holds volatile state relating to an individual dask task on this worker.
 * Mutated only by `WorkerState` (treat every field as readonly elsewhere).
 */
export class TaskState {
  //: Task key (wire form) and its canonical id (`keyId(key)`), used to index every collection.
  readonly key: Key;
  readonly id: string;
  //: The task body, null for a task that is only a dependency fetched from peers.
  runSpec: SerializedTask | null = null;
  //: The data needed by this key to run.
  readonly dependencies = new Set<TaskState>();
  //: The tasks that use this one as a dependency.
  readonly dependents = new Set<TaskState>();
  //: Subset of dependencies that are not in memory.
  readonly waitingForData = new Set<TaskState>();
  //: Subset of dependents that are not in memory.
  readonly waiters = new Set<TaskState>();
  //: Current state.
  state: TaskStateState = "released";
  //: Not null iff state is cancelled or resumed: what the task was doing when cancelled.
  previous: "executing" | "long-running" | "flight" | null = null;
  //: Not null iff state is resumed: what the scheduler now wants instead.
  next: "fetch" | "waiting" | null = null;
  //: Expected duration in seconds (2022 `duration`; absent in 2026).
  duration: number | null = null;
  //: Scheduler priority with this worker's generation appended; lower runs first.
  priority: number[] | null = null;
  //: Addresses of peers we believe hold this data.
  whoHas = new Set<string>();
  //: Peer the data is coming from while in flight.
  comingFrom: string | null = null;
  //: Abstract resources consumed while running.
  resourceRestrictions: Record<string, number> = {};
  //: The failure, as the shell reported it (string or Serialized-like; forwarded verbatim).
  exception: unknown = null;
  traceback: unknown = null;
  exceptionText = "";
  tracebackText = "";
  //: Pickled class of the value (or an empty byte string from non-Python code) and its name.
  type: Uint8Array | null = null;
  typename = "";
  //: Times a dependency was not where we expected it (kept for parity; unused by 2022.12).
  suspiciousCount = 0;
  //: Log of transfer and compute intervals.
  readonly startstops: StartStop[] = [];
  //: Arbitrary msgpack-able metadata, sent in task-finished.
  metadata: Record<string, unknown> = {};
  //: Size of the value, once known (from the scheduler for dependencies, the shell for results).
  nbytes: number | null = null;
  //: Task annotations from compute-task.
  annotations: Record<string, unknown> | null = null;
  //: 2026 `run_id` from compute-task, echoed in task-finished / task-erred / long-running.
  runId: number | null = null;
  //: True once the Execute / GatherDep servicing this task has reported back; changes what
  //: transitions out of executing, flight, cancelled and resumed do.
  done = false;

  constructor(key: Key) {
    this.key = key;
    this.id = keyId(key);
  }

  getNbytes(): number {
    return this.nbytes ?? DEFAULT_DATA_SIZE;
  }

  /** A task that is, or whose dependent is, being processed here must keep its data. */
  isProtected(): boolean {
    if (PROCESSING.has(this.state)) return true;
    for (const dep of this.dependents) if (PROCESSING.has(dep.state)) return true;
    return false;
  }

  toString(): string {
    const s =
      this.state === "cancelled" ? `cancelled(${this.previous})`
      : this.state === "resumed" ? `resumed(${this.previous}->${this.next})`
      : this.state;
    return `<TaskState ${JSON.stringify(this.key)} ${s}>`;
  }
}

/** Lexicographic comparison of priority tuples, as Python compares tuples. */
export function comparePriority(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

interface HeapEntry {
  priority: readonly number[];
  seq: number;
  ts: TaskState;
}

/**
 * A set of tasks that also pops them in priority order (distributed/collections.py `HeapSet`).
 * Membership lives in a Map task -> sequence number of its live heap entry; the binary heap may
 * hold stale entries (task discarded, or discarded and re-added), which pop()/peek() skip: lazy
 * deletion keeps discard O(1), and the heap is rebuilt when it gets much larger than the set.
 * Ties pop in insertion order, as Python's `_inc` counter does.
 */
export class HeapSet implements Iterable<TaskState> {
  #data = new Map<TaskState, number>();
  #heap: HeapEntry[] = [];
  #seq = 0;

  get size(): number {
    return this.#data.size;
  }
  has(ts: TaskState): boolean {
    return this.#data.has(ts);
  }
  add(ts: TaskState): void {
    if (this.#data.has(ts)) return;
    if (ts.priority === null) throw new DaskError("DASK_ERR_WORKER_ASSERT", `${ts} has no priority`);
    const seq = this.#seq++;
    this.#data.set(ts, seq);
    this.#push({ priority: ts.priority, seq, ts });
    if (this.#heap.length > 2 * this.#data.size + 64) this.#rebuild();
  }
  discard(ts: TaskState): boolean {
    return this.#data.delete(ts);
  }
  /** Like discard, but a missing task is a bug (Python raises KeyError). */
  remove(ts: TaskState): void {
    if (!this.#data.delete(ts)) throw new DaskError("DASK_ERR_WORKER_ASSERT", `${ts} not in HeapSet`);
  }
  peek(): TaskState {
    this.#dropStale();
    const top = this.#heap[0];
    if (!top) throw new DaskError("DASK_ERR_WORKER_ASSERT", "peek into an empty HeapSet");
    return top.ts;
  }
  pop(): TaskState {
    const ts = this.peek();
    this.#popTop();
    this.#data.delete(ts);
    return ts;
  }
  /** Members in priority order (for debugging and tests; O(n log n)). */
  sorted(): TaskState[] {
    return [...this.#data.keys()].sort((a, b) => comparePriority(a.priority!, b.priority!));
  }
  [Symbol.iterator](): Iterator<TaskState> {
    return this.#data.keys();
  }

  // An entry is live only if its seq is the one recorded for its task: a task that left the
  // set, or left and came back (possibly with a new priority), leaves a stale entry behind.
  #live(e: HeapEntry): boolean {
    return this.#data.get(e.ts) === e.seq;
  }
  #dropStale(): void {
    while (this.#heap.length > 0 && !this.#live(this.#heap[0]!)) this.#popTop();
  }
  #rebuild(): void {
    const entries = this.#heap.filter((e) => this.#live(e));
    this.#heap = [];
    for (const e of entries) this.#push(e);
  }
  #less(a: HeapEntry, b: HeapEntry): boolean {
    const c = comparePriority(a.priority, b.priority);
    return c < 0 || (c === 0 && a.seq < b.seq);
  }
  #push(e: HeapEntry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  #popTop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** One record of the transition log; `story()` filters these. */
export type LogEntry = readonly unknown[];

/** A transition the table does not allow (Python `InvalidTransition`). */
export class InvalidTransition extends DaskError {
  readonly key: Key;
  readonly start: TaskStateState;
  readonly finish: TaskStateState;
  readonly story: LogEntry[];
  constructor(key: Key, start: TaskStateState, finish: TaskStateState, story: LogEntry[], options?: { cause?: unknown }, code = "DASK_ERR_INVALID_TRANSITION") {
    super(code, `${JSON.stringify(key)} :: ${start}->${finish}` + (options?.cause instanceof Error ? ` (${options.cause.message})` : ""), options);
    this.name = "InvalidTransition";
    this.key = key;
    this.start = start;
    this.finish = finish;
    this.story = story;
  }
}

/** `transitionCounterMax` reached: almost always a transition loop. */
export class TransitionCounterMaxExceeded extends InvalidTransition {
  constructor(key: Key, start: TaskStateState, finish: TaskStateState, story: LogEntry[]) {
    super(key, start, finish, story, undefined, "DASK_ERR_TRANSITION_COUNTER_MAX");
    this.name = "TransitionCounterMaxExceeded";
  }
}

/** `validateState()` found a broken invariant for one task (Python `InvalidTaskState`). */
export class InvalidTaskState extends DaskError {
  readonly key: Key;
  readonly state: TaskStateState;
  readonly story: LogEntry[];
  constructor(key: Key, state: TaskStateState, story: LogEntry[], options?: { cause?: unknown }) {
    super("DASK_ERR_INVALID_TASK_STATE", `${JSON.stringify(key)} :: ${state}` + (options?.cause instanceof Error ? `: ${options.cause.message}` : ""), options);
    this.name = "InvalidTaskState";
    this.key = key;
    this.state = state;
    this.story = story;
  }
}

/** Python's `assert` inside the state machine: a bug, never an input problem. */
export function assert(cond: unknown, message?: string | (() => string)): asserts cond {
  if (!cond) {
    throw new DaskError("DASK_ERR_WORKER_ASSERT", typeof message === "function" ? message() : (message ?? "worker state assertion failed"));
  }
}

/** Host part of a dask address ("tcp://10.0.0.1:8786" -> "10.0.0.1"; "[::1]" keeps brackets). */
export function getAddressHost(address: string): string {
  const rest = address.includes("://") ? address.slice(address.indexOf("://") + 3) : address;
  if (rest.startsWith("[")) return rest.slice(0, rest.indexOf("]") + 1);
  const colon = rest.lastIndexOf(":");
  return colon < 0 ? rest : rest.slice(0, colon);
}
