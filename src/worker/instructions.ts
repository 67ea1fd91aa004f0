// Instructions: what the state machine asks the shell to do (distributed 2022.12.1
// `worker_state_machine.py` `Instruction` subclasses). Pure data: no IO.
//
// Messages to the scheduler are instructions named `<Op>Msg` with a literal `op` and `toWire()`
// (cf. `SendMessageToScheduler.to_dict`); their fields are the wire's snake_case names. The
// scheduler adds `worker` itself (DASK-PROTOCOL-2022.12.md §6.4), so we never send it.
// 2026 requires `run_id` on task-finished / task-erred / long-running (MODERN-DELTA.md §7); it is
// echoed only when the compute-task carried one, because 2022 never sends it and ignores extras.
import type { Key } from "../protocol/values.ts";
import type { StartStop } from "./task-state.ts";

/** Structural equality for matcher fields (primitives, arrays, bytes, Map, Set, plain objects).
 *  Hand-written because this module also runs in browsers and workerd (no node:util). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array((b as ArrayBufferView).buffer, (b as ArrayBufferView).byteOffset, (b as ArrayBufferView).byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  if (a instanceof Set) {
    const bb = b as Set<unknown>;
    // Sets of primitives compare by membership; sets of objects fall back to element order.
    if (a.size !== bb.size) return false;
    const ba = [...bb];
    return [...a].every((v, i) => bb.has(v) || deepEqual(v, ba[i]));
  }
  if (a instanceof Map) {
    const bb = b as Map<unknown, unknown>;
    if (a.size !== bb.size) return false;
    const be = [...bb];
    return [...a].every(([k, v], i) => (bb.has(k) ? deepEqual(v, bb.get(k)) : deepEqual([k, v], be[i])));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export abstract class Instruction {
  readonly stimulus_id: string;
  constructor(stimulus_id: string) {
    this.stimulus_id = stimulus_id;
  }

  /** Partial matcher for tests (Python `Instruction.match`): same class, listed fields equal. */
  static match<T extends Instruction>(this: abstract new (...a: never[]) => T, fields: Partial<Omit<T, "toWire">> = {}): InstructionMatch {
    return new InstructionMatch(this, fields as Record<string, unknown>);
  }
}

export class InstructionMatch {
  readonly cls: abstract new (...a: never[]) => Instruction;
  readonly fields: Readonly<Record<string, unknown>>;
  constructor(cls: abstract new (...a: never[]) => Instruction, fields: Record<string, unknown>) {
    this.cls = cls;
    this.fields = fields;
  }
  matches(instr: unknown): boolean {
    if (!(instr instanceof this.cls) || instr.constructor !== this.cls) return false;
    const rec = instr as unknown as Record<string, unknown>;
    return Object.entries(this.fields).every(([k, v]) => deepEqual(rec[k], v));
  }
  toString(): string {
    return `${this.cls.name}.match(${JSON.stringify(this.fields)})`;
  }
}

/** Compare a whole instruction list to expectations (exact instructions or matchers). */
export function instructionsMatch(actual: readonly Instruction[], expected: readonly (Instruction | InstructionMatch)[]): boolean {
  if (actual.length !== expected.length) return false;
  return expected.every((e, i) => (e instanceof InstructionMatch ? e.matches(actual[i]) : deepEqual(actual[i], e)));
}

/** Fetch `to_gather` from peer `worker` with one get_data call (keys in priority order). */
export class GatherDep extends Instruction {
  readonly worker: string;
  readonly to_gather: Key[];
  //: Sum of the expected sizes; must be echoed in the GatherDep*Event that ends it.
  readonly total_nbytes: number;
  constructor(f: { worker: string; to_gather: Key[]; total_nbytes: number; stimulus_id: string }) {
    super(f.stimulus_id);
    this.worker = f.worker;
    this.to_gather = f.to_gather;
    this.total_nbytes = f.total_nbytes;
  }
}

/** Run the task `key` (its run_spec is in `state.tasks`); answer with an ExecuteDoneEvent. */
export class Execute extends Instruction {
  readonly key: Key;
  constructor(f: { key: Key; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
  }
}

/** After a backoff chosen by the shell, feed RetryBusyWorkerEvent for `worker`. */
export class RetryBusyWorkerLater extends Instruction {
  readonly worker: string;
  constructor(f: { worker: string; stimulus_id: string }) {
    super(f.stimulus_id);
    this.worker = f.worker;
  }
}

/** A message for the scheduler's batched stream. */
export abstract class SendMessageToScheduler extends Instruction {
  abstract readonly op: string;
  /** The msgpack-ready dict (field order as Python's `to_dict`: fields, op, stimulus_id). */
  abstract toWire(): Record<string, unknown>;
}

function withRunId(d: Record<string, unknown>, run_id: number | null): Record<string, unknown> {
  if (run_id !== null) d.run_id = run_id;
  return d;
}

export class TaskFinishedMsg extends SendMessageToScheduler {
  readonly op = "task-finished";
  readonly key: Key;
  readonly nbytes: number | null;
  //: Pickled type; non-Python workers send an empty byte string (MODERN-DELTA.md §7).
  readonly type: Uint8Array;
  readonly typename: string;
  readonly metadata: Record<string, unknown>;
  readonly thread: number | null;
  readonly startstops: StartStop[];
  readonly run_id: number | null;
  constructor(f: {
    key: Key; nbytes: number | null; type: Uint8Array; typename: string; metadata: Record<string, unknown>;
    thread: number | null; startstops: StartStop[]; run_id?: number | null; stimulus_id: string;
  }) {
    super(f.stimulus_id);
    this.key = f.key;
    this.nbytes = f.nbytes;
    this.type = f.type;
    this.typename = f.typename;
    this.metadata = f.metadata;
    this.thread = f.thread;
    this.startstops = f.startstops;
    this.run_id = f.run_id ?? null;
  }
  toWire(): Record<string, unknown> {
    const d = {
      key: this.key, nbytes: this.nbytes, type: this.type, typename: this.typename, metadata: this.metadata,
      thread: this.thread, startstops: this.startstops, op: this.op, stimulus_id: this.stimulus_id,
    };
    return { ...withRunId(d, this.run_id), status: "OK" };
  }
}

export class TaskErredMsg extends SendMessageToScheduler {
  readonly op = "task-erred";
  readonly key: Key;
  readonly exception: unknown;
  readonly traceback: unknown;
  readonly exception_text: string;
  readonly traceback_text: string;
  readonly thread: number | null;
  readonly startstops: StartStop[];
  readonly run_id: number | null;
  constructor(f: {
    key: Key; exception: unknown; traceback: unknown; exception_text: string; traceback_text: string;
    thread: number | null; startstops: StartStop[]; run_id?: number | null; stimulus_id: string;
  }) {
    super(f.stimulus_id);
    this.key = f.key;
    this.exception = f.exception;
    this.traceback = f.traceback;
    this.exception_text = f.exception_text;
    this.traceback_text = f.traceback_text;
    this.thread = f.thread;
    this.startstops = f.startstops;
    this.run_id = f.run_id ?? null;
  }
  toWire(): Record<string, unknown> {
    const d = {
      key: this.key, exception: this.exception, traceback: this.traceback, exception_text: this.exception_text,
      traceback_text: this.traceback_text, thread: this.thread, startstops: this.startstops, op: this.op, stimulus_id: this.stimulus_id,
    };
    return { ...withRunId(d, this.run_id), status: "error" };
  }
}

export class ReleaseWorkerDataMsg extends SendMessageToScheduler {
  readonly op = "release-worker-data";
  readonly key: Key;
  constructor(f: { key: Key; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
  }
  toWire(): Record<string, unknown> {
    return { key: this.key, op: this.op, stimulus_id: this.stimulus_id };
  }
}

/** The task raised Reschedule; not to be confused with RescheduleEvent. */
export class RescheduleMsg extends SendMessageToScheduler {
  readonly op = "reschedule";
  readonly key: Key;
  constructor(f: { key: Key; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
  }
  toWire(): Record<string, unknown> {
    return { key: this.key, op: this.op, stimulus_id: this.stimulus_id };
  }
}

export class LongRunningMsg extends SendMessageToScheduler {
  readonly op = "long-running";
  readonly key: Key;
  readonly compute_duration: number | null;
  readonly run_id: number | null;
  constructor(f: { key: Key; compute_duration: number | null; run_id?: number | null; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
    this.compute_duration = f.compute_duration;
    this.run_id = f.run_id ?? null;
  }
  toWire(): Record<string, unknown> {
    return withRunId({ key: this.key, compute_duration: this.compute_duration, op: this.op, stimulus_id: this.stimulus_id }, this.run_id);
  }
}

export class AddKeysMsg extends SendMessageToScheduler {
  readonly op = "add-keys";
  readonly keys: Key[];
  constructor(f: { keys: Key[]; stimulus_id: string }) {
    super(f.stimulus_id);
    this.keys = f.keys;
  }
  toWire(): Record<string, unknown> {
    return { keys: this.keys, op: this.op, stimulus_id: this.stimulus_id };
  }
}

/** Ask where these keys are now (answered by refresh-who-has). */
export class RequestRefreshWhoHasMsg extends SendMessageToScheduler {
  readonly op = "request-refresh-who-has";
  readonly keys: Key[];
  constructor(f: { keys: Key[]; stimulus_id: string }) {
    super(f.stimulus_id);
    this.keys = f.keys;
  }
  toWire(): Record<string, unknown> {
    return { keys: this.keys, op: this.op, stimulus_id: this.stimulus_id };
  }
}

/** Answer to steal-request: our state for the key (null if unknown), echoing its stimulus_id. */
export class StealResponseMsg extends SendMessageToScheduler {
  readonly op = "steal-response";
  readonly key: Key;
  readonly state: string | null;
  constructor(f: { key: Key; state: string | null; stimulus_id: string }) {
    super(f.stimulus_id);
    this.key = f.key;
    this.state = f.state;
  }
  toWire(): Record<string, unknown> {
    return { key: this.key, state: this.state, op: this.op, stimulus_id: this.stimulus_id };
  }
}
