// Batched streams (DASK-PROTOCOL §5.2; distributed/batched.py `BatchedSend`, core.py
// `handle_stream`). Sending: ops are buffered and written as ONE array message at most once per
// interval (scheduler->worker 5 ms, worker->scheduler 2 ms, client->scheduler 10 ms). Receiving:
// a message is an array of op-maps (or one map); the string "OK" ends the batch early and
// {"op": "close-stream"} ends the stream.
//
// `BatchPlanner` and `splitBatch` are pure (time arrives as an argument). `BatchedSend` is the
// small shell: it owns one timer, which it gets from an injected `Timers` so tests drive it
// with a fake clock instead of sleeping.
import type { Comm } from "./comm.ts";
import { commClosed } from "./comm.ts";
import { getField } from "./rpc.ts";

/**
 * When the buffered ops should be written. Python's loop: with something buffered, write now
 * unless the previous write was less than `interval` ago, then at previous + interval.
 */
export class BatchPlanner {
  readonly intervalMs: number;
  #buffer: unknown[] = [];
  /** Time of the last write; -Infinity before the first, so the first batch goes at once. */
  #lastWrite = -Infinity;

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  get pending(): number {
    return this.#buffer.length;
  }

  add(...msgs: unknown[]): void {
    for (const m of msgs) this.#buffer.push(m);
  }

  /** null when nothing is buffered; else the time at which to write (<= now means now). */
  dueAt(): number | null {
    if (this.#buffer.length === 0) return null;
    return this.#lastWrite + this.intervalMs;
  }

  /** Takes the batch to write at `now` (null if nothing is due yet) and records the write time. */
  take(now: number): unknown[] | null {
    const due = this.dueAt();
    if (due === null || due > now) return null;
    return this.takeAll(now);
  }

  /** Takes everything regardless of the interval (close, explicit flush). */
  takeAll(now: number): unknown[] | null {
    if (this.#buffer.length === 0) return null;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#lastWrite = now;
    return batch;
  }

  /** Puts a batch whose write failed back in front, so `abort` can report what was lost. */
  restore(batch: unknown[]): void {
    this.#buffer = [...batch, ...this.#buffer];
  }
}

/** What one received stream message means. */
export interface BatchContents {
  /** Op-maps to dispatch, in order. */
  ops: Array<Record<string, unknown> | Map<unknown, unknown>>;
  /** A close-stream op was seen: the receiver closes the comm after dispatching `ops`. */
  closeStream: boolean;
  /** Elements that were neither "OK" nor a map (Python would raise on them). */
  invalid: unknown[];
}

/**
 * Splits a received message as core.py `handle_stream` does: a single map is a batch of one;
 * "OK" skips the rest of the batch; "close-stream" stops dispatch and closes the stream.
 */
export function splitBatch(msg: unknown): BatchContents {
  const out: BatchContents = { ops: [], closeStream: false, invalid: [] };
  const items = Array.isArray(msg) ? msg : [msg];
  for (const item of items) {
    if (item === "OK") break;
    if (typeof item !== "object" || item === null || Array.isArray(item) || item instanceof Uint8Array) {
      out.invalid.push(item);
      continue;
    }
    const op = getField(item, "op");
    if (op === "close-stream") {
      out.closeStream = true;
      break;
    }
    out.ops.push(item as Record<string, unknown>);
  }
  return out;
}

/** The clock and timer the shell uses; tests pass a fake one. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Buffers ops for one comm and writes them in batches (batched.py `BatchedSend`). `send` never
 * blocks and never throws for a live stream; if the comm dies, buffered ops are dropped and
 * `closed` resolves with the cause (Python logs and closes too; the owner reacts to the
 * broken stream, e.g. the worker re-registers as a new worker).
 */
export class BatchedSend {
  readonly planner: BatchPlanner;
  #timers: Timers;
  #comm: Comm | undefined;
  #timer: unknown;
  #writing = false;
  #closing = false;
  #ended = false;
  #done!: (cause: unknown) => void;
  /** Settles when the stream ends: undefined after `close()`, the error if a write failed. */
  readonly ended: Promise<unknown>;
  /** Messages and batches written, for tests and diagnostics (Python keeps both counters). */
  messageCount = 0;
  batchCount = 0;

  constructor(opts: { intervalMs: number; timers?: Timers }) {
    this.planner = new BatchPlanner(opts.intervalMs);
    this.#timers = opts.timers ?? REAL_TIMERS;
    this.ended = new Promise((resolve) => (this.#done = resolve));
  }

  /** Attaches the comm; ops sent before this are written once started. */
  start(comm: Comm): void {
    this.#comm = comm;
    this.#schedule();
  }

  get closed(): boolean {
    return this.#ended || this.#closing;
  }

  /** Queues ops (op-maps) for the next batch. */
  send(...msgs: unknown[]): void {
    if (this.#ended || this.#closing) throw commClosed("send on a closed BatchedSend");
    this.planner.add(...msgs);
    this.#schedule();
  }

  /** Writes what is buffered, then closes the comm (batched.py `close`). */
  async close(): Promise<void> {
    if (this.#ended) return;
    this.#closing = true;
    this.#cancelTimer();
    while (this.#writing) await this.#idle();
    const comm = this.#comm;
    const batch = this.planner.takeAll(this.#timers.now());
    try {
      if (comm && batch && !comm.closed) {
        this.#count(batch);
        await comm.write(batch);
      }
    } catch {
      // the stream is going away anyway
    }
    await comm?.close();
    this.#end(undefined);
  }

  /** Drops buffered ops and the comm at once. */
  abort(): void {
    this.#cancelTimer();
    this.#comm?.abort();
    this.#end(undefined);
  }

  #schedule(): void {
    if (!this.#comm || this.#writing || this.#ended || this.#closing) return;
    const due = this.planner.dueAt();
    if (due === null) return;
    const wait = due - this.#timers.now();
    if (wait <= 0) {
      this.#cancelTimer();
      void this.#flush();
    } else if (this.#timer === undefined) {
      this.#timer = this.#timers.setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, wait);
    }
  }

  async #flush(): Promise<void> {
    const batch = this.planner.take(this.#timers.now());
    if (!batch) return;
    this.#writing = true;
    try {
      this.#count(batch);
      await this.#comm!.write(batch);
    } catch (error) {
      this.#writing = false;
      this.planner.restore(batch);
      this.#comm!.abort();
      this.#end(error);
      return;
    }
    this.#writing = false;
    this.#wakeIdle?.();
    this.#schedule();
  }

  #count(batch: unknown[]): void {
    this.batchCount++;
    this.messageCount += batch.length;
  }

  #wakeIdle: (() => void) | undefined;
  #idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeIdle = () => {
        this.#wakeIdle = undefined;
        resolve();
      };
    });
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #end(cause: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closing = false;
    this.#wakeIdle?.();
    this.#done(cause);
  }
}
