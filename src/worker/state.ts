// WorkerState: the worker's pure state machine (distributed 2022.12.1 `worker_state_machine.py`
// `WorkerState`). Events in, instructions out, through ONE mutator: `handleStimulus`.
//
// Pure: no IO, no timers, no Date.now / Math.random / process. Time arrives inside events; the
// one random choice (tie-break between equally good peers) uses a seeded generator owned by the
// state, as Python's `rng = Random(0)`. The shell (worker.ts, next issue) runs the instructions
// and feeds back one event per outcome, failures included.
//
// Every task collection is indexed by `keyId(key)` (tuple keys are arrays; see values.ts).
// The data store is injected (`data`: has/get/set/delete/keys by key id): tests pass a Map,
// production passes the Wasm-backed store. Actors are a Python-only feature and not modelled.
//
// Must not: do IO, read clocks, or be mutated other than through handleStimulus. A throw out of
// handleStimulus is a bug (InvalidTransition, an assertion): the state may be half-updated, so
// the shell should log the story and shut the worker down, as Python's `fail_hard` does.
// Deliberate differences from Python 2022.12.1 are listed in docs/worker-state.md.
import { ConfigError } from "../errors.ts";
import { keyId, type Key } from "../protocol/values.ts";
import {
  AcquireReplicasEvent, CancelComputeEvent, ComputeTaskEvent, errorFields, ExecuteFailureEvent, ExecuteSuccessEvent,
  FindMissingEvent, FreeKeysEvent, GatherDepBusyEvent, GatherDepFailureEvent, GatherDepNetworkFailureEvent,
  GatherDepSuccessEvent, PauseEvent, RefreshWhoHasEvent, RemoveReplicasEvent, RescheduleEvent, RetryBusyWorkerEvent,
  SecedeEvent, StealRequestEvent, UnpauseEvent, UpdateDataEvent, type ErrorFields, type ExecuteDoneEvent,
  type GatherDepDoneEvent, type StateMachineEvent,
} from "./events.ts";
import {
  AddKeysMsg, GatherDep, RequestRefreshWhoHasMsg, RetryBusyWorkerLater, StealResponseMsg, TaskErredMsg, TaskFinishedMsg,
  type Instruction,
} from "./instructions.ts";
import {
  assert, comparePriority, getAddressHost, HeapSet, InvalidTransition, READY, TaskState, TransitionCounterMaxExceeded,
  type LogEntry, type TaskStateState,
} from "./task-state.ts";
import { mergeRecsInstructions, RecommendationsConflict, TRANSITIONS, type Rec, type Recs, type RecsInstrs } from "./transitions.ts";
import { validateState, validateTask } from "./validate.ts";

/** TRANSITIONS as start -> finish -> function, so that lookups build no "start>finish" string. */
const TRANSITION_LOOKUP: ReadonlyMap<string, ReadonlyMap<string, (typeof TRANSITIONS)[string]>> = (() => {
  const m = new Map<string, Map<string, (typeof TRANSITIONS)[string]>>();
  for (const [pair, fn] of Object.entries(TRANSITIONS)) {
    const [from, to] = pair.split(">") as [string, string];
    if (!m.has(from)) m.set(from, new Map());
    m.get(from)!.set(to, fn);
  }
  return m;
})();

/** Shared log record for "no new recommendations" (most transitions). */
const NO_RECS: Readonly<Record<string, string>> = Object.freeze({});

/** What the state needs from the byte store, indexed by key id. A `Map<string, unknown>` fits. */
export interface DataStore {
  has(id: string): boolean;
  get(id: string): unknown;
  set(id: string, value: unknown): unknown;
  delete(id: string): boolean;
  keys(): Iterable<string>;
}

export interface WorkerStateOptions {
  /** Tasks that may execute at once (default 1). */
  nthreads?: number;
  /** This worker's contact address; must be set before the first fetch. */
  address?: string;
  data?: DataStore;
  /** key id -> thread number, filled by the shell (sent as task-finished `thread`). */
  threads?: Map<string, number>;
  /** Abstract resources, e.g. {wasm: 2} (see DESIGN.md "Tasks"). */
  resources?: Readonly<Record<string, number>>;
  /** Concurrent incoming transfers (Python 9999 here; the Worker passes its config, 4). */
  transferIncomingCountLimit?: number;
  /** The count limit applies only past this many bytes in flight (Python 10e6). */
  transferIncomingBytesThrottleThreshold?: number;
  transferIncomingBytesLimit?: number;
  transferMessageBytesLimit?: number;
  /** Check every touched task after each transition batch and the whole state after each
   *  stimulus (O(tasks) per stimulus: for tests and debugging). Default false; Python's
   *  constructor defaults to true but its Worker passes the config value, false by default. */
  validate?: boolean;
  /** Throw TransitionCounterMaxExceeded when this many transitions happened (debugging). */
  transitionCounterMax?: number | false;
  /** Entries kept in the transition log (Python 100_000) and the stimulus log (10_000). */
  logLength?: number;
  stimulusLogLength?: number;
  /** Size of a value whose nbytes nobody reported (scatter); the shell passes the store's size. */
  sizeof?: (value: unknown) => number;
  /** Seed of the tie-breaking generator (Python uses Random(0)). */
  seed?: number;
}

/** A FIFO of at most `max` entries (Python `deque(maxlen=...)`); amortised O(1) append. */
export class BoundedLog<T> implements Iterable<T> {
  #items: T[] = [];
  #start = 0;
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  push(item: T): void {
    this.#items.push(item);
    if (this.#items.length - this.#start > this.max) this.#start++;
    // Compact once the dead prefix is as long as the live part.
    if (this.#start > this.max) {
      this.#items = this.#items.slice(this.#start);
      this.#start = 0;
    }
  }
  get length(): number {
    return this.#items.length - this.#start;
  }
  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.#start; i < this.#items.length; i++) yield this.#items[i]!;
  }
}

/** Approximate size of a JS value whose size nobody reported. */
export function defaultSizeof(value: unknown, depth = 0): number {
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (typeof value === "string") return value.length;
  if (value === null || typeof value !== "object" || depth > 8) return 8;
  let n = 8;
  if (Array.isArray(value)) for (const v of value) n += defaultSizeof(v, depth + 1);
  else if (value instanceof Map) for (const [k, v] of value) n += defaultSizeof(k, depth + 1) + defaultSizeof(v, depth + 1);
  else for (const [k, v] of Object.entries(value)) n += k.length + defaultSizeof(v, depth + 1);
  return n;
}

/** Seeded 32-bit generator (mulberry32): deterministic tie-breaks, no global randomness. */
function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Recommendations being processed: a dict whose popitem() takes the newest entry, in O(1).
 *  Updating a pending task keeps its position, as Python's dict.update does. */
class RecsQueue {
  #stack: TaskState[] = [];
  #pending = new Map<TaskState, Rec>();
  get size(): number {
    return this.#pending.size;
  }
  update(recs: Recs): void {
    for (const [ts, finish] of recs) {
      if (!this.#pending.has(ts)) this.#stack.push(ts);
      this.#pending.set(ts, finish);
    }
  }
  popitem(): [TaskState, Rec] {
    for (;;) {
      const ts = this.#stack.pop()!;
      const finish = this.#pending.get(ts);
      if (finish !== undefined) {
        this.#pending.delete(ts);
        return [ts, finish];
      }
    }
  }
}

function checkCount(name: string, v: number | undefined, min: number, allowInf: boolean): void {
  if (v === undefined) return;
  const ok = typeof v === "number" && v >= min && (Number.isInteger(v) || (allowInf && v === Infinity));
  if (!ok) throw new ConfigError(`options.${name} must be ${allowInf ? "a number" : "an integer"} >= ${min}${allowInf ? " (or Infinity)" : ""}, got ${String(v)}`);
}

/**
 * State machine encapsulating the lifetime of all tasks on a worker.
 *
 * All fields are readonly from outside (they are public only so that validate.ts, the
 * transition table and tests can read them): mutate only through `handleStimulus`. The fields
 * are heavily correlated; poking one by hand yields a broken state and cluster deadlocks.
 */
export class WorkerState {
  //: Contact address of this worker ("tcp://host:port"); peers on the same host are preferred.
  address: string;
  //: {key id: TaskState}: tasks executing here, and their dependencies.
  readonly tasks = new Map<string, TaskState>();
  //: {key id: thread}, shared with the shell, which fills it while executing.
  readonly threads: Map<string, number>;
  //: In-memory values, shared by reference with the shell's store.
  readonly data: DataStore;
  //: Priority heap of tasks ready to run without resource restrictions; disjoint from constrained.
  readonly ready = new HeapSet();
  //: Priority heap of ready tasks waiting for abstract resources; disjoint from ready.
  readonly constrained = new HeapSet();
  //: Tasks that may execute at once. Invariant: executing.size <= nthreads.
  readonly nthreads: number;
  //: False while paused: no new executions or fetches start (running ones continue).
  running = true;
  //: Tasks in state waiting.
  readonly waiting = new Set<TaskState>();
  //: {peer: {key id}}: data we care about that we believe that peer holds.
  readonly hasWhat = new Map<string, Set<string>>();
  //: {peer: heap of fetch tasks it holds}. All and only tasks in state fetch; a task with
  //: several holders appears in several heaps.
  readonly dataNeeded = new Map<string, HeapSet>();
  //: Tasks in state fetch (each counted once).
  fetchCount = 0;
  //: Soft cap on one GatherDep's bytes (the first task always goes, to ensure progress).
  readonly transferMessageBytesLimit: number;
  //: All and only tasks in state missing.
  readonly missingDepFlight = new Set<TaskState>();
  //: Tasks coming over current transfers: state flight, or cancelled/resumed from flight.
  readonly inFlightTasks = new Set<TaskState>();
  //: {peer: [key ids]} of open transfers; such peers are not asked again until done.
  readonly inFlightWorkers = new Map<string, Set<string>>();
  //: Bytes expected by open transfers.
  transferIncomingBytes = 0;
  //: Max concurrent incoming transfers (enforced only past the throttle threshold below).
  readonly transferIncomingCountLimit: number;
  //: Transfers started since creation.
  transferIncomingCountTotal = 0;
  //: transferIncomingCountLimit applies only once this many bytes are in flight (Python 10 MB).
  readonly transferIncomingBytesThrottleThreshold: number;
  //: Peers that answered busy recently; not asked until RetryBusyWorkerEvent.
  readonly busyWorkers = new Set<string>();
  //: Decremented per compute-task and appended to the priority: LIFO among equal priorities.
  generation = 0;
  //: Resources this worker has, and those not taken by running tasks (<= total).
  readonly totalResources: Readonly<Record<string, number>>;
  readonly availableResources: Record<string, number>;
  //: Running tasks counting against nthreads: executing, or cancelled/resumed from executing.
  readonly executing = new Set<TaskState>();
  //: Running tasks that seceded (do not count against nthreads); disjoint from executing.
  readonly longRunning = new Set<TaskState>();
  //: Tasks run since creation, including failed and cancelled ones.
  executedCount = 0;
  //: Total nbytes of the tasks in memory.
  nbytes = 0;
  //: Transition log (bounded): [key id, start, finish, final, {key id: rec}, stimulus_id], and
  //: other records ending with the stimulus_id. See story().
  readonly log: BoundedLog<LogEntry>;
  //: Every stimulus received (bounded, values stripped).
  readonly stimulusLog: BoundedLog<StateMachineEvent>;
  //: Run validation after each transition batch and each stimulus.
  readonly validate: boolean;
  //: Transitions so far; with transitionCounterMax catches infinite loops.
  transitionCounter = 0;
  readonly transitionCounterMax: number | false;
  //: Byte cap on all open transfers together.
  readonly transferIncomingBytesLimit: number;
  //: Seeded generator for tie-breaks.
  readonly rng: () => number;
  //: Size of values nobody reported a size for.
  readonly sizeof: (value: unknown) => number;

  constructor(options: WorkerStateOptions = {}) {
    checkCount("nthreads", options.nthreads, 1, false);
    checkCount("transferIncomingCountLimit", options.transferIncomingCountLimit, 0, false);
    checkCount("transferIncomingBytesThrottleThreshold", options.transferIncomingBytesThrottleThreshold, 0, false);
    checkCount("transferIncomingBytesLimit", options.transferIncomingBytesLimit, 0, true);
    checkCount("transferMessageBytesLimit", options.transferMessageBytesLimit, 0, true);
    checkCount("logLength", options.logLength, 1, false);
    checkCount("stimulusLogLength", options.stimulusLogLength, 1, false);
    if (options.transitionCounterMax !== undefined && options.transitionCounterMax !== false) {
      checkCount("transitionCounterMax", options.transitionCounterMax, 1, false);
    }
    for (const [name, v] of Object.entries(options.resources ?? {})) {
      if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`options.resources.${name} must be a finite number >= 0, got ${String(v)}`);
    }
    this.nthreads = options.nthreads ?? 1;
    this.address = options.address ?? "";
    this.data = options.data ?? new Map<string, unknown>();
    this.threads = options.threads ?? new Map();
    this.totalResources = { ...(options.resources ?? {}) };
    this.availableResources = { ...this.totalResources };
    this.validate = options.validate ?? false;
    this.transferIncomingCountLimit = options.transferIncomingCountLimit ?? 9999;
    this.transferIncomingBytesThrottleThreshold = options.transferIncomingBytesThrottleThreshold ?? 10_000_000;
    this.transferMessageBytesLimit = options.transferMessageBytesLimit ?? Infinity;
    this.transferIncomingBytesLimit = options.transferIncomingBytesLimit ?? Infinity;
    this.transitionCounterMax = options.transitionCounterMax ?? false;
    this.log = new BoundedLog(options.logLength ?? 100_000);
    this.stimulusLog = new BoundedLog(options.stimulusLogLength ?? 10_000);
    this.rng = makeRng(options.seed ?? 0);
    this.sizeof = options.sizeof ?? defaultSizeof;
  }

  /** Process events, run the resulting transitions to a steady state, return what to do. */
  handleStimulus(...stims: StateMachineEvent[]): Instruction[] {
    const instructions: Instruction[] = [];
    for (const stim of stims) {
      // FindMissing is a periodic tick: logging it would flush the useful history.
      if (!(stim instanceof FindMissingEvent)) this.stimulusLog.push(stim.toLoggable());
      const [recs, instr] = this.#handleEvent(stim);
      instructions.push(...instr);
      instructions.push(...this.#transitions(recs, stim.stimulus_id));
      if (this.validate) this.validateState();
    }
    return instructions;
  }

  // ---- accessors ------------------------------------------------------------------------------

  /** The task for a key, if known (tests: `ws.task("x")?.state`). */
  task(key: Key): TaskState | undefined {
    return this.tasks.get(keyId(key));
  }

  /** Tasks occupying a thread and counting against nthreads (includes cancelled ones). */
  get executingCount(): number {
    return this.executing.size;
  }

  /** All tasks occupying a thread, seceded or not. */
  get allRunningTasks(): Set<TaskState> {
    return new Set([...this.executing, ...this.longRunning]);
  }

  get inFlightTasksCount(): number {
    return this.inFlightTasks.size;
  }

  /** Open incoming transfers. */
  get transferIncomingCount(): number {
    return this.inFlightWorkers.size;
  }

  /** Counts per state, as Python's `task_counts` (cancelled/resumed count where they run). */
  get taskCounts(): Record<string, number> {
    const out: Record<string, number> = {
      executing: this.executing.size,
      "long-running": this.longRunning.size,
      memory: [...this.data.keys()].length,
      ready: this.ready.size,
      constrained: this.constrained.size,
      waiting: this.waiting.size,
      fetch: this.fetchCount,
      missing: this.missingDepFlight.size,
      flight: this.inFlightTasks.size,
    };
    out.other = this.tasks.size - Object.values(out).reduce((a, b) => a + b, 0);
    return out;
  }

  /** Log records that mention any of these keys or stimulus ids (Python `story`). */
  story(...keysOrStimuli: (Key | TaskState)[]): LogEntry[] {
    const wanted = new Set(keysOrStimuli.map((k) => (k instanceof TaskState ? k.id : keyId(k))));
    const hit = (v: unknown): boolean => typeof v === "string" && wanted.has(v);
    const out: LogEntry[] = [];
    for (const entry of this.log) {
      if (entry.some((c) => hit(c) || ((Array.isArray(c) || c instanceof Set) && [...c].some(hit)))) out.push(entry);
    }
    return out;
  }

  /** Stimuli that concern these keys (Python `stimulus_story`). */
  stimulusStory(...keys: Key[]): StateMachineEvent[] {
    const wanted = new Set(keys.map(keyId));
    return [...this.stimulusLog].filter((ev) => {
      const k = (ev as { key?: Key }).key;
      return k !== undefined && wanted.has(keyId(k));
    });
  }

  /** Check every invariant (Python `validate_state`); throws InvalidTaskState / assertion. */
  validateState(): void {
    validateState(this);
  }

  // ---- helpers shared with transitions.ts (internal: not part of the public API) -------------

  /** @internal data_needed[worker], created on demand (Python defaultdict). */
  _dataNeededFor(worker: string): HeapSet {
    let h = this.dataNeeded.get(worker);
    if (!h) this.dataNeeded.set(worker, (h = new HeapSet()));
    return h;
  }

  #hasWhatFor(worker: string): Set<string> {
    let s = this.hasWhat.get(worker);
    if (!s) this.hasWhat.set(worker, (s = new Set()));
    return s;
  }

  /** @internal Reset a task's attributes to neutral defaults and drop it from every collection.
   *  Idempotent. */
  _purgeState(ts: TaskState): void {
    this.data.delete(ts.id);
    for (const worker of ts.whoHas) {
      this.hasWhat.get(worker)?.delete(ts.id);
      this.dataNeeded.get(worker)?.discard(ts);
    }
    ts.whoHas.clear();
    this.threads.delete(ts.id);
    for (const d of ts.dependencies) {
      ts.waitingForData.delete(d);
      d.waiters.delete(ts);
    }
    ts.waitingForData.clear();
    ts.nbytes = null;
    ts.previous = null;
    ts.next = null;
    ts.done = false;
    ts.comingFrom = null;
    ts.exception = null;
    ts.traceback = null;
    ts.exceptionText = "";
    ts.tracebackText = "";
    this.missingDepFlight.delete(ts);
    this.ready.discard(ts);
    this.constrained.discard(ts);
    this.executing.delete(ts);
    this.longRunning.delete(ts);
    this.inFlightTasks.delete(ts);
    this.waiting.delete(ts);
  }

  /** @internal Start as many ready tasks as there are free threads (and resources). */
  _ensureComputing(): RecsInstrs {
    if (!this.running) return [new Map(), []];
    const recs: Recs = new Map();
    while (this.executing.size < this.nthreads) {
      const ts = this.#nextReadyTask();
      if (!ts) break;
      if (this.validate) {
        assert(READY.has(ts.state));
        assert(!recs.has(ts));
      }
      recs.set(ts, "executing");
      this.#acquireResources(ts);
      this.executing.add(ts);
    }
    return [recs, []];
  }

  /** @internal Store a value and wake dependents whose last missing dependency it was.
   *  The caller sends task-finished or add-keys. Throws if the store refuses the value. */
  _putKeyInMemory(ts: TaskState, value: unknown, stimulus_id: string): RecsInstrs {
    if (this.data.has(ts.id)) {
      ts.state = "memory";
      return [new Map(), []];
    }
    const recs: Recs = new Map();
    this.data.set(ts.id, value);
    ts.state = "memory";
    if (ts.nbytes === null) ts.nbytes = this.sizeof(value);
    this.nbytes += ts.nbytes;
    for (const dep of ts.dependents) {
      dep.waitingForData.delete(ts);
      if (dep.waitingForData.size === 0 && dep.state === "waiting") recs.set(dep, "ready");
    }
    this.log.push([ts.id, "put-in-memory", stimulus_id]);
    return [recs, []];
  }

  /** @internal */
  _getTaskFinishedMsg(ts: TaskState, stimulus_id: string): TaskFinishedMsg {
    assert(this.data.has(ts.id), () => `Task ${ts} not ready`);
    if (ts.nbytes === null) ts.nbytes = this.sizeof(this.data.get(ts.id));
    return new TaskFinishedMsg({
      key: ts.key,
      nbytes: ts.nbytes,
      // A Python client unpickles `type` only if truthy: b"" is the safe non-Python value.
      type: ts.type ?? new Uint8Array(0),
      typename: ts.typename,
      metadata: ts.metadata,
      thread: this.threads.get(ts.id) ?? null,
      startstops: ts.startstops,
      run_id: ts.runId,
      stimulus_id,
    });
  }

  /** @internal */
  _taskErredMsg(ts: TaskState, stimulus_id: string): TaskErredMsg {
    return new TaskErredMsg({
      key: ts.key,
      exception: ts.exception,
      traceback: ts.traceback,
      exception_text: ts.exceptionText,
      traceback_text: ts.tracebackText,
      thread: this.threads.get(ts.id) ?? null,
      startstops: ts.startstops,
      run_id: ts.runId,
      stimulus_id,
    });
  }

  /** @internal */
  _errorFields(e: unknown): ErrorFields {
    return errorFields(e);
  }

  // ---- private helpers ------------------------------------------------------------------------

  #ensureTaskExists(key: Key, priority: number[], stimulus_id: string): TaskState {
    const id = keyId(key);
    let ts = this.tasks.get(id);
    if (!ts) this.tasks.set(id, (ts = new TaskState(key)));
    if (!ts.priority) ts.priority = priority;
    this.log.push([id, "ensure-task-exists", ts.state, stimulus_id]);
    return ts;
  }

  #updateWhoHas(whoHas: ReadonlyMap<Key, readonly string[]>): void {
    for (const [key, workersIn] of whoHas) {
      const ts = this.tasks.get(keyId(key));
      // Answers to request-refresh-who-has may name keys forgotten meanwhile.
      if (!ts) continue;
      const workers = new Set(workersIn);
      // Only a racing rebalance() can list ourselves; a release-worker-data is already in
      // transit, so there is nothing to tell the scheduler.
      workers.delete(this.address);
      if (workers.size === ts.whoHas.size && [...workers].every((w) => ts.whoHas.has(w))) continue;
      for (const worker of ts.whoHas) {
        if (workers.has(worker)) continue;
        this.hasWhat.get(worker)?.delete(ts.id);
        if (ts.state === "fetch") this._dataNeededFor(worker).remove(ts);
      }
      for (const worker of workers) {
        if (ts.whoHas.has(worker)) continue;
        this.#hasWhatFor(worker).add(ts.id);
        if (ts.state === "fetch") this._dataNeededFor(worker).add(ts);
      }
      ts.whoHas = workers;
    }
  }

  /** Throttle when the connection count AND a minimum of bytes are reached, or the byte cap. */
  #shouldThrottleIncomingTransfers(): boolean {
    const reachedCountLimit = this.transferIncomingCount >= this.transferIncomingCountLimit;
    const reachedThrottleThreshold = this.transferIncomingBytes >= this.transferIncomingBytesThrottleThreshold;
    const reachedBytesLimit = this.transferIncomingBytes >= this.transferIncomingBytesLimit;
    return (reachedCountLimit && reachedThrottleThreshold) || reachedBytesLimit;
  }

  /** Move tasks fetch -> flight, one GatherDep per peer, until nothing is left or a limit hits. */
  #ensureCommunicating(stimulus_id: string): RecsInstrs {
    if (!this.running || this.dataNeeded.size === 0) return [new Map(), []];
    if (this.#shouldThrottleIncomingTransfers()) return [new Map(), []];
    const recs: Recs = new Map();
    const instructions: Instruction[] = [];
    for (const [worker, available] of this.#selectWorkersForGather()) {
      assert(worker !== this.address);
      const [toGather, messageNbytes] = this.#selectKeysForGather(available);
      // We always load at least one task...
      assert(toGather.length > 0 || this.transferIncomingBytes > 0);
      // ...but that task might have been taken by a previous iteration.
      if (toGather.length === 0) break;
      const ids = new Set(toGather.map((ts) => ts.id));
      this.log.push(["gather-dependencies", worker, [...ids], stimulus_id]);
      for (const ts of toGather) {
        if (this.validate) {
          assert(ts.state === "fetch");
          assert(ts.whoHas.has(worker));
          assert(!recs.has(ts));
        }
        recs.set(ts, ["flight", worker]);
      }
      // At most one GatherDep per peer per call; the peer sits in inFlightWorkers until done.
      instructions.push(new GatherDep({ worker, to_gather: toGather.map((ts) => ts.key), total_nbytes: messageNbytes, stimulus_id }));
      this.inFlightWorkers.set(worker, ids);
      this.transferIncomingCountTotal += 1;
      this.transferIncomingBytes += messageNbytes;
      if (this.#shouldThrottleIncomingTransfers()) break;
    }
    return [recs, instructions];
  }

  /**
   * Peers with fetchable tasks, best first: by their top task's priority, then local host before
   * remote, then more tasks first, then a seeded random tie-break. Busy and in-flight peers are
   * skipped; emptied heaps are dropped.
   */
  *#selectWorkersForGather(): Generator<[string, HeapSet]> {
    const host = getAddressHost(this.address);
    type Entry = { prio: number[]; remote: number; negN: number; rnd: number; worker: string; tasks: HeapSet };
    const heap: Entry[] = [];
    for (const [worker, tasks] of [...this.dataNeeded]) {
      if (tasks.size === 0) {
        this.dataNeeded.delete(worker);
        continue;
      }
      if (this.inFlightWorkers.has(worker) || this.busyWorkers.has(worker)) continue;
      heap.push({ prio: tasks.peek().priority!, remote: getAddressHost(worker) !== host ? 1 : 0, negN: -tasks.size, rnd: this.rng(), worker, tasks });
    }
    const cmp = (a: Entry, b: Entry): number =>
      comparePriority(a.prio, b.prio) || a.remote - b.remote || a.negN - b.negN || a.rnd - b.rnd || (a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0);
    // Few peers: a sorted array with re-insertion is simpler than a heap and as fast.
    heap.sort(cmp);
    while (heap.length > 0) {
      const e = heap.shift()!;
      // The heap may have shrunk (tasks replicated on a better peer were taken), so re-rank.
      if (e.tasks.size === 0) {
        this.dataNeeded.delete(e.worker);
      } else if (-e.negN !== e.tasks.size) {
        const upd = { ...e, prio: e.tasks.peek().priority!, negN: -e.tasks.size };
        let i = 0;
        while (i < heap.length && cmp(heap[i]!, upd) <= 0) i++;
        heap.splice(i, 0, upd);
      } else {
        yield [e.worker, e.tasks];
        if (e.tasks.size === 0) this.dataNeeded.delete(e.worker);
      }
    }
  }

  /** All tasks this peer holds, in priority order, up to the message and incoming byte limits. */
  #selectKeysForGather(available: HeapSet): [TaskState[], number] {
    const toGather: TaskState[] = [];
    let messageNbytes = 0;
    while (available.size > 0) {
      const ts = available.peek();
      if (this.#taskExceedsTransferLimits(ts, messageNbytes)) break;
      // Also pops it from `available`.
      for (const worker of ts.whoHas) this._dataNeededFor(worker).remove(ts);
      toGather.push(ts);
      messageNbytes += ts.getNbytes();
    }
    return [toGather, messageNbytes];
  }

  #taskExceedsTransferLimits(ts: TaskState, messageNbytes: number): boolean {
    // With no other traffic, the top task goes regardless of size, to ensure progress.
    if (this.transferIncomingBytes === 0 && messageNbytes === 0) return false;
    let allowance = this.transferIncomingBytesLimit - this.transferIncomingBytes;
    // The first task of a message ignores transferMessageBytesLimit, for progress.
    if (messageNbytes !== 0) allowance = Math.min(allowance, this.transferMessageBytesLimit) - messageNbytes;
    return ts.getNbytes() > allowance;
  }

  #nextReadyTask(): TaskState | null {
    if (this.ready.size > 0 && this.constrained.size > 0) {
      const tsr = this.ready.peek();
      const tsc = this.constrained.peek();
      if (comparePriority(tsc.priority!, tsr.priority!) < 0 && this.#resourceRestrictionsSatisfied(tsc)) return this.constrained.pop();
      return this.ready.pop();
    }
    if (this.ready.size > 0) return this.ready.pop();
    if (this.constrained.size > 0 && this.#resourceRestrictionsSatisfied(this.constrained.peek())) return this.constrained.pop();
    return null;
  }

  // A resource this worker does not have counts as 0 available (Python raises KeyError; the
  // scheduler never sends such a task, and a wrong one must not crash the worker).
  #resourceRestrictionsSatisfied(ts: TaskState): boolean {
    return Object.entries(ts.resourceRestrictions).every(([r, needed]) => (Object.hasOwn(this.availableResources, r) ? this.availableResources[r]! : 0) >= needed);
  }
  #acquireResources(ts: TaskState): void {
    for (const [r, needed] of Object.entries(ts.resourceRestrictions)) if (Object.hasOwn(this.availableResources, r)) this.availableResources[r]! -= needed;
  }
  #releaseResources(ts: TaskState): void {
    for (const [r, needed] of Object.entries(ts.resourceRestrictions)) if (Object.hasOwn(this.availableResources, r)) this.availableResources[r]! += needed;
  }

  /** Transition one task (Python `_transition`); unknown pairs go through "released". */
  #transition(ts: TaskState, finishRec: Rec, stimulus_id: string): RecsInstrs {
    // Hot path (several transitions per task): no rest-array or key-string allocation.
    const finish = typeof finishRec === "string" ? finishRec : finishRec[0];
    if (ts.state === finish) return [new Map(), []];
    const start = ts.state;
    const func = TRANSITION_LOOKUP.get(start)?.get(finish);
    // Counted before running, so that runaway recursion is caught; a path through released
    // counts twice.
    this.transitionCounter += 1;
    if (this.transitionCounterMax !== false && this.transitionCounter >= this.transitionCounterMax) {
      throw new TransitionCounterMaxExceeded(ts.key, start, finish, this.story(ts));
    }
    let recs: Recs;
    let instructions: Instruction[];
    if (func) {
      [recs, instructions] = typeof finishRec === "string" ? func(this, ts, stimulus_id) : func(this, ts, stimulus_id, ...finishRec.slice(1));
    } else if (start !== "released" && finish !== "released") {
      // start -> released -> finish
      try {
        [recs, instructions] = this.#transition(ts, "released", stimulus_id);
        for (let v = recs.get(ts); v !== undefined; v = recs.get(ts)) {
          recs.delete(ts);
          // Do not forget: the point of this path is to reach `finish`.
          if ((typeof v === "string" ? v : v[0]) === "forgotten") continue;
          [recs, instructions] = mergeRecsInstructions([recs, instructions], this.#transition(ts, v, stimulus_id));
        }
        // Deviation from Python 2022.12.1: here the final transition's recommendations win over
        // those of the trip through released. Python merges them strictly, so fetch->waiting of a
        // task that gained dependencies in the same compute-task (acquire-replicas, then the
        // scheduler recomputes that key here) raises RecommendationsConflict: releasing
        // recommends {dep: released}, released->waiting {dep: fetch}, and fetch is what the
        // task now needs. Found by test/worker/random-walk.test.ts; reproduced on Python.
        const [finalRecs, finalInstr] = this.#transition(ts, finishRec, stimulus_id);
        for (const [t, r] of finalRecs) recs.set(t, r);
        instructions.push(...finalInstr);
      } catch (e) {
        if (e instanceof InvalidTransition || e instanceof RecommendationsConflict) {
          throw new InvalidTransition(ts.key, start, finish, this.story(ts), { cause: e });
        }
        throw e;
      }
    } else {
      throw new InvalidTransition(ts.key, start, finish, this.story(ts));
    }
    let newRecs: Readonly<Record<string, string>> = NO_RECS;
    if (recs.size > 0) {
      // Null prototype: a key named "__proto__" must be recorded, not reparent the record.
      const o: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [t, r] of recs) o[t.id] = typeof r === "string" ? r : r[0];
      newRecs = o;
    }
    this.log.push([ts.id, start, finish, ts.state, newRecs, stimulus_id]);
    return [recs, instructions];
  }

  /** Process recommendations until none are left, then start transfers (Python `_transitions`). */
  #transitions(recommendations: Recs, stimulus_id: string): Instruction[] {
    const instructions: Instruction[] = [];
    const touched = new Set<TaskState>();
    const processRecs = (recs: Recs): void => {
      const queue = new RecsQueue();
      queue.update(recs);
      while (queue.size > 0) {
        const [ts, finish] = queue.popitem();
        touched.add(ts);
        const [aRecs, aInstr] = this.#transition(ts, finish, stimulus_id);
        queue.update(aRecs);
        instructions.push(...aInstr);
      }
    };
    processRecs(recommendations);
    // Called once per stimulus, after every task reached fetch, so that several tasks from
    // one peer are batched into one GatherDep (dask/distributed#6497).
    const [aRecs, aInstr] = this.#ensureCommunicating(stimulus_id);
    instructions.push(...aInstr);
    processRecs(aRecs);
    if (this.validate) for (const ts of touched) validateTask(this, ts);
    return instructions;
  }

  // ---- event handlers -------------------------------------------------------------------------

  #handleEvent(ev: StateMachineEvent): RecsInstrs {
    if (ev instanceof ComputeTaskEvent) return this.#handleComputeTask(ev);
    if (ev instanceof ExecuteSuccessEvent) return this.#handleExecuteSuccess(ev);
    if (ev instanceof ExecuteFailureEvent) return this.#handleExecuteFailure(ev);
    if (ev instanceof RescheduleEvent) return this.#handleReschedule(ev);
    if (ev instanceof GatherDepSuccessEvent) return this.#handleGatherDepSuccess(ev);
    if (ev instanceof GatherDepBusyEvent) return this.#handleGatherDepBusy(ev);
    if (ev instanceof GatherDepNetworkFailureEvent) return this.#handleGatherDepNetworkFailure(ev);
    if (ev instanceof GatherDepFailureEvent) return this.#handleGatherDepFailure(ev);
    if (ev instanceof FreeKeysEvent) return this.#handleFreeKeys(ev);
    if (ev instanceof RemoveReplicasEvent) return this.#handleRemoveReplicas(ev);
    if (ev instanceof AcquireReplicasEvent) return this.#handleAcquireReplicas(ev);
    if (ev instanceof StealRequestEvent) return this.#handleStealRequest(ev);
    if (ev instanceof RefreshWhoHasEvent) return this.#handleRefreshWhoHas(ev);
    if (ev instanceof UpdateDataEvent) return this.#handleUpdateData(ev);
    if (ev instanceof CancelComputeEvent) return this.#handleCancelCompute(ev);
    if (ev instanceof PauseEvent) {
      // Running executions and transfers continue; nothing new starts.
      this.running = false;
      return [new Map(), []];
    }
    if (ev instanceof UnpauseEvent) {
      this.running = true;
      return this._ensureComputing();
    }
    if (ev instanceof RetryBusyWorkerEvent) {
      this.busyWorkers.delete(ev.worker);
      return [new Map(), []];
    }
    if (ev instanceof SecedeEvent) {
      const ts = this.task(ev.key);
      return ts ? [new Map([[ts, ["long-running", ev.compute_duration] as const]]), []] : [new Map(), []];
    }
    if (ev instanceof FindMissingEvent) return this.#handleFindMissing(ev);
    throw new TypeError(`unhandled event ${ev.constructor.name}`);
  }

  #handleUpdateData(ev: UpdateDataEvent): RecsInstrs {
    const recs: Recs = new Map();
    const instructions: Instruction[] = [];
    for (const [key, value] of ev.data) {
      const id = keyId(key);
      let ts = this.tasks.get(id);
      if (ts) {
        recs.set(ts, ["memory", value]);
      } else {
        this.tasks.set(id, (ts = new TaskState(key)));
        let r: RecsInstrs;
        try {
          r = this._putKeyInMemory(ts, value, ev.stimulus_id);
        } catch (e) {
          const f = errorFields(e);
          r = [new Map([[ts, ["error", f.exception, f.traceback, f.exception_text, f.traceback_text] as const]]), []];
        }
        for (const [t, v] of r[0]) recs.set(t, v);
        instructions.push(...r[1]);
      }
      this.log.push([id, "receive-from-scatter", ev.stimulus_id]);
    }
    if (ev.report) instructions.push(new AddKeysMsg({ keys: [...ev.data.keys()], stimulus_id: ev.stimulus_id }));
    return [recs, instructions];
  }

  /** The scheduler no longer needs these keys; the data may stay if a local task needs it. */
  #handleFreeKeys(ev: FreeKeysEvent): RecsInstrs {
    this.log.push(["free-keys", ev.keys.map(keyId), ev.stimulus_id]);
    const recs: Recs = new Map();
    for (const key of ev.keys) {
      const ts = this.task(key);
      if (ts) recs.set(ts, "released");
    }
    return [recs, []];
  }

  /** Best effort: drop unneeded replicas; keys a local task still needs are re-announced. */
  #handleRemoveReplicas(ev: RemoveReplicasEvent): RecsInstrs {
    const recs: Recs = new Map();
    const instructions: Instruction[] = [];
    const rejected: Key[] = [];
    for (const key of ev.keys) {
      const ts = this.task(key);
      if (!ts || ts.state !== "memory") continue;
      if (!ts.isProtected()) {
        this.log.push([ts.id, "remove-replica-confirmed", ev.stimulus_id]);
        recs.set(ts, "released");
      } else {
        rejected.push(key);
      }
    }
    if (rejected.length > 0) {
      this.log.push(["remove-replica-rejected", rejected.map(keyId), ev.stimulus_id]);
      instructions.push(new AddKeysMsg({ keys: rejected, stimulus_id: ev.stimulus_id }));
    }
    return [recs, instructions];
  }

  #handleAcquireReplicas(ev: AcquireReplicasEvent): RecsInstrs {
    if (this.validate) {
      assert(ev.who_has.size === ev.nbytes.size && [...ev.who_has.keys()].every((k) => [...ev.nbytes.keys()].some((n) => keyId(n) === keyId(k))));
      assert([...ev.who_has.values()].every((w) => w.length > 0));
    }
    const recs: Recs = new Map();
    for (const [key, nbytes] of ev.nbytes) {
      // After dependencies of default- or high-priority computations, before low-priority
      // ones (compute(priority=) is negated before it reaches the priority tuple).
      const ts = this.#ensureTaskExists(key, [1], ev.stimulus_id);
      if (ts.state !== "memory") {
        ts.nbytes = nbytes;
        recs.set(ts, "fetch");
      }
    }
    this.#updateWhoHas(ev.who_has);
    return [recs, []];
  }

  #handleComputeTask(ev: ComputeTaskEvent): RecsInstrs {
    const id = keyId(ev.key);
    let ts = this.tasks.get(id);
    if (!ts) this.tasks.set(id, (ts = new TaskState(ev.key)));
    this.log.push([id, "compute-task", ts.state, ev.stimulus_id]);
    const recs: Recs = new Map();
    const instructions: Instruction[] = [];
    const s = ts.state;
    if (READY.has(s) || s === "executing" || s === "long-running" || s === "waiting") {
      // Already on its way; nothing to do.
    } else if (s === "memory") {
      // The scheduler lost track (e.g. after a reconnect): tell it again, with this run's id.
      if (ev.run_id !== null) ts.runId = ev.run_id;
      instructions.push(this._getTaskFinishedMsg(ts, ev.stimulus_id));
    } else if (s === "error") {
      if (ev.run_id !== null) ts.runId = ev.run_id;
      instructions.push(this._taskErredMsg(ts, ev.stimulus_id));
    } else if (s === "released" || s === "fetch" || s === "flight" || s === "missing" || s === "cancelled" || s === "resumed") {
      recs.set(ts, "waiting");
      ts.runSpec = ev.run_spec;
      ts.runId = ev.run_id;
      const priority = [...ev.priority, this.generation];
      this.generation -= 1;
      ts.exception = null;
      ts.traceback = null;
      ts.exceptionText = "";
      ts.tracebackText = "";
      ts.priority = priority;
      ts.duration = ev.duration;
      ts.annotations = ev.annotations;
      // A task still running from before keeps its old restrictions, so that the resources it
      // holds are released correctly when it completes.
      if (!((s === "cancelled" || s === "resumed") && (ts.previous === "executing" || ts.previous === "long-running"))) {
        ts.resourceRestrictions = ev.resource_restrictions;
      }
      if (this.validate) {
        assert(ev.who_has.size === ev.nbytes.size, "compute-task who_has and nbytes name different keys");
        for (const workers of ev.who_has.values()) {
          assert(workers.length > 0);
          assert(new Set(workers).size === workers.length);
        }
      }
      for (const [depKey, nbytes] of ev.nbytes) {
        const depTs = this.#ensureTaskExists(depKey, priority, ev.stimulus_id);
        if (depTs.state !== "memory") depTs.nbytes = nbytes;
        ts.dependencies.add(depTs);
        depTs.dependents.add(ts);
      }
      this.#updateWhoHas(ev.who_has);
      // Deviation from Python 2022.12.1: a missing dependency that just got holders goes back
      // to fetch now. Python leaves it missing with a non-empty who_has when the task itself
      // takes the flight -> cancelled -> resumed path (no released->waiting to recommend the
      // fetch), which breaks the missing-state invariant until a refresh-who-has round trip.
      // Found by test/worker/random-walk.test.ts; reproduced on Python.
      for (const depKey of ev.who_has.keys()) {
        const depTs = this.task(depKey);
        if (depTs && depTs.state === "missing" && depTs.whoHas.size > 0 && !recs.has(depTs)) recs.set(depTs, "fetch");
      }
    } else {
      throw new InvalidTransition(ts.key, s, "waiting", this.story(ts));
    }
    return [recs, instructions];
  }

  /** Common part of every GatherDep*Event: close the transfer, yield its tasks. */
  /**
   * Python's Worker._update_metrics_received_data: the transfer is attached, for diagnostics,
   * to one task, `_get_cause(to_gather)`: the first dependent of the first fetched key that
   * has dependents, else the last fetched key. The real 2026 worker sends it in that task's
   * task-finished `startstops` (vectors-2026.7/python-client, test/worker/replay-2026.test.ts).
   * Python picks the cause when the transfer starts; we pick it when it ends (same task unless
   * dependents changed meanwhile, which only moves a diagnostic).
   */
  #recordTransfer(worker: string, start: number, stop: number): void {
    let cause: TaskState | undefined;
    for (const id of this.inFlightWorkers.get(worker) ?? []) {
      const ts = this.tasks.get(id);
      if (!ts) continue;
      cause = ts;
      const first = ts.dependents.values().next();
      if (!first.done) {
        cause = first.value;
        break;
      }
    }
    cause?.startstops.push({ action: "transfer", start, stop, source: worker });
  }

  #gatherDepDoneCommon(ev: GatherDepDoneEvent): TaskState[] {
    this.transferIncomingBytes -= ev.total_nbytes;
    const ids = this.inFlightWorkers.get(ev.worker);
    assert(ids, () => `no transfer in flight from ${ev.worker}`);
    this.inFlightWorkers.delete(ev.worker);
    const out: TaskState[] = [];
    for (const id of ids) {
      const ts = this.tasks.get(id);
      // A key scattered here during the transfer may since have been freed and forgotten, or
      // even recreated (fetching from elsewhere): the transfer no longer concerns it.
      if (!ts || ts.comingFrom !== ev.worker) continue;
      ts.comingFrom = null;
      this.inFlightTasks.delete(ts);
      // Deviation from Python 2022.12.1: a key that a scatter (update_data) already put in
      // memory, or that erred, while its transfer was open is left alone. Python yields it too,
      // and a busy / network-failure answer then recommends memory -> fetch, which drops the
      // scattered data under a running or waiting dependent (reproduced on Python; found by
      // test/worker/random-walk.test.ts).
      if (ts.state !== "flight" && ts.state !== "cancelled" && ts.state !== "resumed") continue;
      ts.done = true;
      out.push(ts);
    }
    return out;
  }

  /** The reply may hold fewer keys than asked: the others are looked for elsewhere. */
  #handleGatherDepSuccess(ev: GatherDepSuccessEvent): RecsInstrs {
    if (ev.start !== null && ev.stop !== null) this.#recordTransfer(ev.worker, ev.start, ev.stop);
    const recs: Recs = new Map();
    const received = new Map([...ev.data].map(([k, v]) => [keyId(k), v]));
    for (const ts of this.#gatherDepDoneCommon(ev)) {
      if (received.has(ts.id)) {
        recs.set(ts, ["memory", received.get(ts.id)]);
      } else {
        this.log.push([ts.id, "missing-dep", ev.stimulus_id]);
        if (this.validate) {
          assert(ts.state !== "fetch");
          assert(!this.dataNeeded.get(ev.worker)?.has(ts));
        }
        ts.whoHas.delete(ev.worker);
        this.hasWhat.get(ev.worker)?.delete(ts.id);
        recs.set(ts, "fetch");
      }
    }
    return [recs, []];
  }

  /** Do not hammer a busy peer; try other holders now, and ask the scheduler for more holders
   *  when every known one is busy. */
  #handleGatherDepBusy(ev: GatherDepBusyEvent): RecsInstrs {
    this.busyWorkers.add(ev.worker);
    const recs: Recs = new Map();
    const refresh: Key[] = [];
    for (const ts of this.#gatherDepDoneCommon(ev)) {
      recs.set(ts, "fetch");
      if ([...ts.whoHas].every((w) => this.busyWorkers.has(w))) refresh.push(ts.key);
    }
    const instructions: Instruction[] = [new RetryBusyWorkerLater({ worker: ev.worker, stimulus_id: ev.stimulus_id })];
    if (refresh.length > 0) instructions.push(new RequestRefreshWhoHasMsg({ keys: refresh, stimulus_id: ev.stimulus_id }));
    return [recs, instructions];
  }

  /** Assume the peer died: forget everything it held, even keys we did not ask for, so that
   *  fetches move on to other holders (or to missing) at once. */
  #handleGatherDepNetworkFailure(ev: GatherDepNetworkFailureEvent): RecsInstrs {
    const recs: Recs = new Map();
    for (const ts of this.#gatherDepDoneCommon(ev)) {
      this.log.push([ts.id, "missing-dep", ev.stimulus_id]);
      recs.set(ts, "fetch");
    }
    const needed = this.dataNeeded.get(ev.worker);
    this.dataNeeded.delete(ev.worker);
    for (const ts of needed ?? []) {
      if (this.validate) {
        assert(ts.state === "fetch");
        assert(ts.whoHas.has(ev.worker));
      }
      // May override the recommendation of the loop above.
      if (ts.whoHas.size === 1) recs.set(ts, "missing");
    }
    for (const id of this.hasWhat.get(ev.worker) ?? []) {
      this.tasks.get(id)?.whoHas.delete(ev.worker);
    }
    this.hasWhat.delete(ev.worker);
    return [recs, []];
  }

  /** A non-network failure (e.g. undecodable data): the tasks err. */
  #handleGatherDepFailure(ev: GatherDepFailureEvent): RecsInstrs {
    const recs: Recs = new Map();
    for (const ts of this.#gatherDepDoneCommon(ev)) {
      recs.set(ts, ["error", ev.exception, ev.traceback, ev.exception_text, ev.traceback_text]);
    }
    return [recs, []];
  }

  /** Answer with our state; a task that has not started is released (the thief runs it). */
  #handleStealRequest(ev: StealRequestEvent): RecsInstrs {
    // Stealing may race with releasing: an unknown key answers null ("already computing").
    const ts = this.task(ev.key);
    const state: TaskStateState | null = ts ? ts.state : null;
    const smsg = new StealResponseMsg({ key: ev.key, state, stimulus_id: ev.stimulus_id });
    // A constrained task has not taken resources yet: that happens when it starts executing.
    if (ts && (READY.has(ts.state) || ts.state === "waiting")) return [new Map([[ts, "released"]]), [smsg]];
    return [new Map(), [smsg]];
  }

  /** Best effort: only possible while waiting or ready. */
  #handleCancelCompute(ev: CancelComputeEvent): RecsInstrs {
    const ts = this.task(ev.key);
    if (!ts || !(READY.has(ts.state) || ts.state === "waiting")) return [new Map(), []];
    this.log.push([ts.id, "cancel-compute", ev.stimulus_id]);
    // Its dependents cannot be processing on the scheduler, so none was assigned here.
    assert(ts.dependents.size === 0);
    return [new Map([[ts, "released"]]), []];
  }

  /** Common part of every ExecuteDoneEvent: free the thread and resources, start the next. */
  #executeDoneCommon(ev: ExecuteDoneEvent): [TaskState, Recs, Instruction[]] {
    // The key must still be known: executing/cancelled tasks are never forgotten.
    const ts = this.task(ev.key);
    assert(ts, () => `execute finished for unknown key ${JSON.stringify(ev.key)}`);
    if (this.validate) assert(this.executing.has(ts) !== this.longRunning.has(ts));
    ts.done = true;
    this.executedCount += 1;
    this.#releaseResources(ts);
    this.executing.delete(ts);
    this.longRunning.delete(ts);
    const [recs, instr] = this._ensureComputing();
    assert(!recs.has(ts));
    return [ts, recs, instr];
  }

  #handleExecuteSuccess(ev: ExecuteSuccessEvent): RecsInstrs {
    const [ts, recs, instr] = this.#executeDoneCommon(ev);
    ts.startstops.push({ action: "compute", start: ev.start, stop: ev.stop });
    ts.nbytes = ev.nbytes;
    ts.type = ev.type;
    ts.typename = ev.typename;
    recs.set(ts, ["memory", ev.value]);
    return [recs, instr];
  }

  #handleExecuteFailure(ev: ExecuteFailureEvent): RecsInstrs {
    const [ts, recs, instr] = this.#executeDoneCommon(ev);
    if (ev.start !== null && ev.stop !== null) ts.startstops.push({ action: "compute", start: ev.start, stop: ev.stop });
    recs.set(ts, ["error", ev.exception, ev.traceback, ev.exception_text, ev.traceback_text]);
    return [recs, instr];
  }

  /** The task raised Reschedule (unrelated to stealing, which arrives as free-keys). */
  #handleReschedule(ev: RescheduleEvent): RecsInstrs {
    const [ts, recs, instr] = this.#executeDoneCommon(ev);
    recs.set(ts, "rescheduled");
    return [recs, instr];
  }

  #handleFindMissing(ev: FindMissingEvent): RecsInstrs {
    if (this.missingDepFlight.size === 0) return [new Map(), []];
    if (this.validate) for (const ts of this.missingDepFlight) assert(ts.whoHas.size === 0);
    return [new Map(), [new RequestRefreshWhoHasMsg({ keys: [...this.missingDepFlight].map((ts) => ts.key), stimulus_id: ev.stimulus_id })]];
  }

  #handleRefreshWhoHas(ev: RefreshWhoHasEvent): RecsInstrs {
    this.#updateWhoHas(ev.who_has);
    const recs: Recs = new Map();
    for (const key of ev.who_has.keys()) {
      const ts = this.task(key);
      if (!ts) continue;
      if (ts.whoHas.size > 0 && ts.state === "missing") recs.set(ts, "fetch");
      else if (ts.whoHas.size === 0 && ts.state === "fetch") recs.set(ts, "missing");
      // fetch with holders: new replicas may exist while the known ones are busy or in
      // flight; #transitions always calls #ensureCommunicating, which picks them up.
    }
    return [recs, []];
  }
}
