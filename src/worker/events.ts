// Events: everything that can happen to a worker, as data (distributed 2022.12.1
// `worker_state_machine.py` `StateMachineEvent` subclasses). Pure: no IO, no clocks; times and
// stimulus ids arrive inside the events, filled in by the shell.
//
// Wire vocabulary stays verbatim (STYLE.md §4): fields are the snake_case names the scheduler
// sends, so `eventFromWire` is a table lookup and Python tests transliterate mechanically.
// Key-indexed fields (`who_has`, `nbytes`, `data`) are normalised to `Map<Key, V>` because 2026
// keys may be tuples (arrays), which a plain object cannot hold (MODERN-DELTA.md §4).
// This module must not look at `run_spec`: it stays opaque until the shell runs the task.
import { ProtocolError } from "../errors.ts";
import { isKey, type Key } from "../protocol/values.ts";
import type { SerializedTask } from "./task-state.ts";

/** A key-indexed wire map: a decoded msgpack map (Map when keys are not all strings) or an object. */
export type KeyMapLike<V> = ReadonlyMap<Key, V> | Readonly<Record<string, V>>;

/** Normalise a wire map to a Map (object keys are strings, which are valid keys as they are). */
export function toKeyMap<V>(m: KeyMapLike<V> | null | undefined): Map<Key, V> {
  if (m == null) return new Map();
  if (m instanceof Map) return new Map(m as ReadonlyMap<Key, V>);
  return new Map(Object.entries(m as Record<string, V>));
}

/** Base of every stimulus. `stimulus_id` ties the transition log to its cause. */
export abstract class StateMachineEvent {
  readonly stimulus_id: string;
  constructor(stimulus_id: string) {
    this.stimulus_id = stimulus_id;
  }
  /** Copy safe to keep in the bounded stimulus log (drops task values, which may be large). */
  toLoggable(): StateMachineEvent {
    return this;
  }
}

export class PauseEvent extends StateMachineEvent {
  constructor(f: { stimulus_id: string }) {
    super(f.stimulus_id);
  }
}

export class UnpauseEvent extends StateMachineEvent {
  constructor(f: { stimulus_id: string }) {
    super(f.stimulus_id);
  }
}

/** The shell's RetryBusyWorkerLater timer fired: the peer may be asked again. */
export class RetryBusyWorkerEvent extends StateMachineEvent {
  readonly worker: string;
  constructor(f: { worker: string; stimulus_id: string }) {
    super(f.stimulus_id);
    this.worker = f.worker;
  }
}

/** A GatherDep instruction finished (abstract). `total_nbytes` must equal the instruction's. */
export abstract class GatherDepDoneEvent extends StateMachineEvent {
  readonly worker: string;
  readonly total_nbytes: number;
  constructor(f: { worker: string; total_nbytes: number; stimulus_id: string }) {
    super(f.stimulus_id);
    this.worker = f.worker;
    this.total_nbytes = f.total_nbytes;
  }
}

/** The peer answered; `data` may hold fewer keys than were asked for. */
export class GatherDepSuccessEvent extends GatherDepDoneEvent {
  readonly data: Map<Key, unknown>;
  //: When the transfer ran (seconds since the epoch, shell's clock), or null if not measured:
  //: recorded as a "transfer" startstop of a dependent, as Python's gather_dep does.
  readonly start: number | null;
  readonly stop: number | null;
  constructor(f: { worker: string; total_nbytes: number; data: KeyMapLike<unknown>; start?: number | null; stop?: number | null; stimulus_id: string }) {
    super(f);
    this.data = toKeyMap(f.data);
    this.start = f.start ?? null;
    this.stop = f.stop ?? null;
  }
  override toLoggable(): StateMachineEvent {
    const data = new Map([...this.data.keys()].map((k) => [k, null]));
    return new GatherDepSuccessEvent({ worker: this.worker, total_nbytes: this.total_nbytes, data, start: this.start, stop: this.stop, stimulus_id: this.stimulus_id });
  }
}

/** The peer replied `{"status": "busy"}` (DASK-PROTOCOL-2022.12.md §7.1). */
export class GatherDepBusyEvent extends GatherDepDoneEvent {}

/** Connecting to / talking with the peer failed: we treat the peer as dead. */
export class GatherDepNetworkFailureEvent extends GatherDepDoneEvent {}

/** Any other failure (e.g. the data could not be deserialised): the tasks err. */
export class GatherDepFailureEvent extends GatherDepDoneEvent {
  readonly exception: unknown;
  readonly traceback: unknown;
  readonly exception_text: string;
  readonly traceback_text: string;
  constructor(f: { worker: string; total_nbytes: number; stimulus_id: string } & ErrorFields) {
    super(f);
    this.exception = f.exception;
    this.traceback = f.traceback;
    this.exception_text = f.exception_text;
    this.traceback_text = f.traceback_text;
  }
  static fromError(err: unknown, f: { worker: string; total_nbytes: number; stimulus_id: string }): GatherDepFailureEvent {
    return new GatherDepFailureEvent({ ...f, ...errorFields(err) });
  }
}

/** Failure data as task-erred carries it. Non-Python workers send strings (MODERN-DELTA.md §7). */
export interface ErrorFields {
  exception: unknown;
  traceback: unknown;
  exception_text: string;
  traceback_text: string;
}

/** A JS throw as task-erred fields: `exception` and `exception_text` are "Name: message" (a
 *  Python client raises `Exception(str)`), the stack goes into the traceback text. */
export function errorFields(err: unknown): ErrorFields {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const stack = err instanceof Error && typeof err.stack === "string" ? err.stack : "";
  return { exception: text, traceback: stack || null, exception_text: text, traceback_text: stack };
}

/** The scheduler's `compute-task` (DASK-PROTOCOL-2022.12.md §6.3, MODERN-DELTA.md §6). */
export class ComputeTaskEvent extends StateMachineEvent {
  readonly key: Key;
  readonly who_has: Map<Key, string[]>;
  readonly nbytes: Map<Key, number>;
  readonly priority: number[];
  //: 2022 only (absent in 2026).
  readonly duration: number | null;
  //: Opaque; see SerializedTask. Never null (Python wraps None as SerializedTask(task=None)).
  readonly run_spec: SerializedTask;
  readonly resource_restrictions: Record<string, number>;
  readonly actor: boolean;
  readonly annotations: Record<string, unknown>;
  //: 2026 only; when present it must be echoed in task-finished / task-erred / long-running.
  readonly run_id: number | null;
  //: 2026 only; kept for the shell's spans, unused here.
  readonly span_id: string | null;

  constructor(f: {
    key: Key;
    who_has?: KeyMapLike<readonly string[]>;
    nbytes?: KeyMapLike<number>;
    priority: readonly number[];
    duration?: number | null;
    run_spec?: SerializedTask | null;
    resource_restrictions?: Record<string, number> | null;
    actor?: boolean;
    annotations?: Record<string, unknown> | null;
    run_id?: number | null;
    span_id?: string | null;
    stimulus_id: string;
  }) {
    super(f.stimulus_id);
    this.key = f.key;
    this.who_has = new Map([...toKeyMap(f.who_has)].map(([k, w]) => [k, [...w]]));
    this.nbytes = toKeyMap(f.nbytes);
    this.priority = [...f.priority];
    this.duration = f.duration ?? null;
    this.run_spec = f.run_spec ?? { task: null };
    // 2026 may send null (MODERN-DELTA.md §6).
    this.resource_restrictions = { ...(f.resource_restrictions ?? {}) };
    this.actor = f.actor ?? false;
    this.annotations = { ...(f.annotations ?? {}) };
    this.run_id = f.run_id ?? null;
    this.span_id = f.span_id ?? null;
  }

  /**
   * Build from a decoded `compute-task` message of either dialect.
   * 2022: `duration`, and `function`/`args`/`kwargs` when the scheduler stored a dict task,
   * else `run_spec`. 2026: `run_id`, `span_id`, `run_spec` only, `resource_restrictions` may be null.
   */
  static fromWire(msg: Readonly<Record<string, unknown>>): ComputeTaskEvent {
    const key = msg.key;
    if (!isKey(key)) throw badField("compute-task", "key", "a key");
    const stimulus_id = wireString(msg, "compute-task", "stimulus_id");
    const priority = msg.priority;
    if (!Array.isArray(priority) || !priority.every((p) => typeof p === "number")) throw badField("compute-task", "priority", "an array of numbers");
    const who_has = wireKeyMap<readonly string[]>(msg.who_has, "compute-task", "who_has", isAddressList);
    const nbytes = wireKeyMap<number>(msg.nbytes, "compute-task", "nbytes", (v) => typeof v === "number");
    let run_spec: SerializedTask;
    if (msg.function != null) {
      run_spec = { function: msg.function, args: msg.args ?? null, kwargs: msg.kwargs ?? null };
    } else {
      run_spec = { task: msg.run_spec ?? null };
    }
    const rr = msg.resource_restrictions;
    if (rr != null && (typeof rr !== "object" || Array.isArray(rr) || !Object.values(rr).every((v) => typeof v === "number"))) {
      throw badField("compute-task", "resource_restrictions", "a map of numbers or nil");
    }
    const run_id = msg.run_id;
    if (run_id != null && typeof run_id !== "number") throw badField("compute-task", "run_id", "an integer");
    return new ComputeTaskEvent({
      key,
      who_has,
      nbytes,
      priority,
      duration: typeof msg.duration === "number" ? msg.duration : null,
      run_spec,
      resource_restrictions: (rr ?? null) as Record<string, number> | null,
      actor: msg.actor === true,
      annotations: (msg.annotations && typeof msg.annotations === "object" ? msg.annotations : null) as Record<string, unknown> | null,
      run_id: (run_id ?? null) as number | null,
      span_id: typeof msg.span_id === "string" ? msg.span_id : null,
      stimulus_id,
    });
  }

  /** Test convenience (Python `ComputeTaskEvent.dummy`): nbytes default to 1 per dependency. */
  static dummy(
    key: Key,
    o: {
      who_has?: KeyMapLike<readonly string[]>;
      nbytes?: KeyMapLike<number>;
      priority?: readonly number[];
      duration?: number;
      resource_restrictions?: Record<string, number>;
      actor?: boolean;
      annotations?: Record<string, unknown>;
      run_id?: number | null;
      stimulus_id: string;
    },
  ): ComputeTaskEvent {
    const who_has = toKeyMap(o.who_has);
    return new ComputeTaskEvent({
      key,
      who_has,
      nbytes: o.nbytes ?? new Map([...who_has.keys()].map((k) => [k, 1])),
      priority: o.priority ?? [0],
      duration: o.duration ?? 1.0,
      run_spec: null,
      resource_restrictions: o.resource_restrictions ?? {},
      actor: o.actor ?? false,
      annotations: o.annotations ?? {},
      run_id: o.run_id ?? null,
      stimulus_id: o.stimulus_id,
    });
  }

  override toLoggable(): StateMachineEvent {
    // The run_spec may be megabytes of pickle: the log keeps a shallow copy without it (no
    // re-normalisation: this runs once per compute-task).
    if (this.run_spec.task == null && this.run_spec.function == null) return this;
    return Object.assign(Object.create(ComputeTaskEvent.prototype) as ComputeTaskEvent, this, { run_spec: { task: null } });
  }
}

/** An Execute instruction finished (abstract). */
export abstract class ExecuteDoneEvent extends StateMachineEvent {
  readonly key: Key;
  constructor(f: { key: Key; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
  }
}

export class ExecuteSuccessEvent extends ExecuteDoneEvent {
  readonly value: unknown;
  //: Seconds since the epoch, from the shell's clock.
  readonly start: number;
  readonly stop: number;
  //: Exact stored size, reported to the scheduler.
  readonly nbytes: number;
  //: Pickled type for Python clients, or null (sent as an empty byte string).
  readonly type: Uint8Array | null;
  readonly typename: string;
  constructor(f: { key: Key; value: unknown; start: number; stop: number; nbytes: number; type?: Uint8Array | null; typename?: string; stimulus_id: string }) {
    super(f);
    this.value = f.value;
    this.start = f.start;
    this.stop = f.stop;
    this.nbytes = f.nbytes;
    this.type = f.type ?? null;
    this.typename = f.typename ?? "";
  }
  static dummy(key: Key, value: unknown = null, o: { nbytes?: number; stimulus_id: string }): ExecuteSuccessEvent {
    return new ExecuteSuccessEvent({ key, value, start: 0.0, stop: 1.0, nbytes: o.nbytes ?? 1, type: null, stimulus_id: o.stimulus_id });
  }
  override toLoggable(): StateMachineEvent {
    return new ExecuteSuccessEvent({ ...this, value: null });
  }
}

export class ExecuteFailureEvent extends ExecuteDoneEvent {
  readonly start: number | null;
  readonly stop: number | null;
  readonly exception: unknown;
  readonly traceback: unknown;
  readonly exception_text: string;
  readonly traceback_text: string;
  constructor(f: { key: Key; start: number | null; stop: number | null; stimulus_id: string } & ErrorFields) {
    super(f);
    this.start = f.start;
    this.stop = f.stop;
    this.exception = f.exception;
    this.traceback = f.traceback;
    this.exception_text = f.exception_text;
    this.traceback_text = f.traceback_text;
  }
  static fromError(err: unknown, f: { key: Key; start?: number | null; stop?: number | null; stimulus_id: string }): ExecuteFailureEvent {
    return new ExecuteFailureEvent({ key: f.key, start: f.start ?? null, stop: f.stop ?? null, stimulus_id: f.stimulus_id, ...errorFields(err) });
  }
  static dummy(key: Key, o: { stimulus_id: string }): ExecuteFailureEvent {
    return new ExecuteFailureEvent({ key, start: null, stop: null, exception: "", traceback: null, exception_text: "", traceback_text: "", stimulus_id: o.stimulus_id });
  }
}

/** The task asked to be rescheduled (Python's `Reschedule` exception); not work stealing. */
export class RescheduleEvent extends ExecuteDoneEvent {
  static dummy(key: Key, o: { stimulus_id: string }): RescheduleEvent {
    return new RescheduleEvent({ key, stimulus_id: o.stimulus_id });
  }
}

/** `cancel-compute` (handled, though the 2022.12 scheduler never sends it). */
export class CancelComputeEvent extends StateMachineEvent {
  readonly key: Key;
  constructor(f: { key: Key; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
  }
}

/** Periodic tick from the shell: ask the scheduler where missing dependencies are. */
export class FindMissingEvent extends StateMachineEvent {
  constructor(f: { stimulus_id: string }) {
    super(f.stimulus_id);
  }
}

/** `refresh-who-has`: the scheduler's answer to request-refresh-who-has. */
export class RefreshWhoHasEvent extends StateMachineEvent {
  readonly who_has: Map<Key, string[]>;
  constructor(f: { who_has: KeyMapLike<readonly string[]>; stimulus_id: string }) {
    super(f.stimulus_id);
    this.who_has = new Map([...toKeyMap(f.who_has)].map(([k, w]) => [k, [...w]]));
  }
}

/** `acquire-replicas` (AMM): fetch these keys and keep them. */
export class AcquireReplicasEvent extends StateMachineEvent {
  readonly who_has: Map<Key, string[]>;
  readonly nbytes: Map<Key, number>;
  constructor(f: { who_has: KeyMapLike<readonly string[]>; nbytes: KeyMapLike<number>; stimulus_id: string }) {
    super(f.stimulus_id);
    this.who_has = new Map([...toKeyMap(f.who_has)].map(([k, w]) => [k, [...w]]));
    this.nbytes = toKeyMap(f.nbytes);
  }
}

/** `remove-replicas` (AMM): drop these replicas unless a local task still needs them. */
export class RemoveReplicasEvent extends StateMachineEvent {
  readonly keys: Key[];
  constructor(f: { keys: readonly Key[]; stimulus_id: string }) {
    super(f.stimulus_id);
    this.keys = [...f.keys];
  }
}

/** `free-keys`: the scheduler no longer needs these keys here. */
export class FreeKeysEvent extends StateMachineEvent {
  readonly keys: Key[];
  constructor(f: { keys: readonly Key[]; stimulus_id: string }) {
    super(f.stimulus_id);
    this.keys = [...f.keys];
  }
}

/** `steal-request`: answer with the task's state; give it up if it has not started. */
export class StealRequestEvent extends StateMachineEvent {
  readonly key: Key;
  constructor(f: { key: Key; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
  }
}

/** `update_data` RPC (scatter): values put straight into memory. */
export class UpdateDataEvent extends StateMachineEvent {
  readonly data: Map<Key, unknown>;
  readonly report: boolean;
  constructor(f: { data: KeyMapLike<unknown>; report: boolean; stimulus_id: string }) {
    super(f.stimulus_id);
    this.data = toKeyMap(f.data);
    this.report = f.report;
  }
  /**
   * Whether an `update_data` request asks for add-keys: only an explicit `report: true`. Every
   * 2022 scatter path sends report=False and 2026 dropped the field (its worker never reports a
   * scatter); reporting anyway races the 2026 scheduler, which learns the key only after the
   * reply: it answers remove-replicas and the scattered key is forgotten (MODERN-DELTA §8).
   */
  static reportRequested(request: Record<string, unknown>): boolean {
    return request["report"] === true;
  }
  override toLoggable(): StateMachineEvent {
    return new UpdateDataEvent({ data: new Map([...this.data.keys()].map((k) => [k, null])), report: this.report, stimulus_id: this.stimulus_id });
  }
}

/** A running task seceded from its thread (Python `secede()`); optional for JS tasks. */
export class SecedeEvent extends StateMachineEvent {
  readonly key: Key;
  readonly compute_duration: number;
  constructor(f: { key: Key; compute_duration: number; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
    this.compute_duration = f.compute_duration;
  }
}

// ---- wire -> event --------------------------------------------------------------------------

function badField(op: string, field: string, want: string): ProtocolError {
  return new ProtocolError("DASK_ERR_WORKER_MESSAGE", `${op}.${field} must be ${want}`);
}

function wireString(msg: Readonly<Record<string, unknown>>, op: string, field: string): string {
  const v = msg[field];
  if (typeof v !== "string") throw badField(op, field, "a string");
  return v;
}

function wireKey(msg: Readonly<Record<string, unknown>>, op: string, field: string): Key {
  const v = msg[field];
  if (!isKey(v)) throw badField(op, field, "a key");
  return v;
}

function wireKeys(msg: Readonly<Record<string, unknown>>, op: string, field: string): Key[] {
  let v = msg[field];
  // Python sends sets as lists; a codec may hand us a Set (`__Set__`).
  if (v instanceof Set) v = [...v];
  if (!Array.isArray(v) || !v.every(isKey)) throw badField(op, field, "an array of keys");
  return v as Key[];
}

const isAddressList = (v: unknown): boolean => Array.isArray(v) && v.every((a) => typeof a === "string");

function wireKeyMap<V>(v: unknown, op: string, field: string, valueOk: (v: unknown) => boolean): Map<Key, V> {
  if (v == null) return new Map();
  if (typeof v !== "object" || Array.isArray(v)) throw badField(op, field, "a map");
  const m = toKeyMap(v as KeyMapLike<V>);
  for (const [k, val] of m) {
    if (!isKey(k) || !valueOk(val)) throw badField(op, field, "a map from keys to valid values");
  }
  return m;
}

type WireMsg = Readonly<Record<string, unknown>>;

/**
 * Scheduler stream ops that become state-machine events (cf. worker.py `stream_handlers`).
 * `worker-status-change` maps to Pause/Unpause, or to null for statuses the shell handles alone
 * (closing_gracefully). Ops that only the shell handles (`close`, `close-stream`,
 * `remove-worker`) are in SHELL_OPS, not here.
 */
export const STREAM_HANDLERS: Readonly<Record<string, (msg: WireMsg) => StateMachineEvent | null>> = {
  "compute-task": (m) => ComputeTaskEvent.fromWire(m),
  "free-keys": (m) => new FreeKeysEvent({ keys: wireKeys(m, "free-keys", "keys"), stimulus_id: wireString(m, "free-keys", "stimulus_id") }),
  "remove-replicas": (m) => new RemoveReplicasEvent({ keys: wireKeys(m, "remove-replicas", "keys"), stimulus_id: wireString(m, "remove-replicas", "stimulus_id") }),
  "acquire-replicas": (m) =>
    new AcquireReplicasEvent({
      who_has: wireKeyMap(m.who_has, "acquire-replicas", "who_has", isAddressList),
      nbytes: wireKeyMap(m.nbytes, "acquire-replicas", "nbytes", (v) => typeof v === "number"),
      stimulus_id: wireString(m, "acquire-replicas", "stimulus_id"),
    }),
  "steal-request": (m) => new StealRequestEvent({ key: wireKey(m, "steal-request", "key"), stimulus_id: wireString(m, "steal-request", "stimulus_id") }),
  "refresh-who-has": (m) =>
    new RefreshWhoHasEvent({
      who_has: wireKeyMap(m.who_has, "refresh-who-has", "who_has", isAddressList),
      stimulus_id: wireString(m, "refresh-who-has", "stimulus_id"),
    }),
  // 2022.12 never sends it; stimulus_id may be absent in old senders.
  "cancel-compute": (m) => new CancelComputeEvent({ key: wireKey(m, "cancel-compute", "key"), stimulus_id: typeof m.stimulus_id === "string" ? m.stimulus_id : "cancel-compute" }),
  "worker-status-change": (m) => {
    const status = wireString(m, "worker-status-change", "status");
    const stimulus_id = wireString(m, "worker-status-change", "stimulus_id");
    if (status === "paused") return new PauseEvent({ stimulus_id });
    if (status === "running") return new UnpauseEvent({ stimulus_id });
    return null;
  },
};

/** Scheduler stream ops the shell handles without the state machine. */
export const SHELL_OPS: ReadonlySet<string> = new Set(["close", "close-stream", "remove-worker", "shuffle-fail"]);

/** Decode one scheduler stream message into an event (null: not a state-machine matter). */
export function eventFromWire(msg: WireMsg): StateMachineEvent | null {
  const op = msg.op;
  if (typeof op !== "string") throw badField("stream message", "op", "a string");
  const handler = Object.hasOwn(STREAM_HANDLERS, op) ? STREAM_HANDLERS[op] : undefined;
  if (handler) return handler(msg);
  if (SHELL_OPS.has(op)) return null;
  throw new ProtocolError("DASK_ERR_WORKER_UNKNOWN_OP", `unknown scheduler stream op ${JSON.stringify(op)}`);
}
