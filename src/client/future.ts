// Future: a handle on one key held by a Client (distributed client.py `Future`).
//
// Role: a thin handle. Every question goes to the client that made it (status, waiting,
// gathering); the handle itself holds only its key and whether it was released. One handle is
// one reference: the client counts them per key and releases the key on the scheduler when the
// last is released, explicitly (`release()`) or by the garbage collector (the client registers
// each handle with a FinalizationRegistry). Must not: own IO, or keep the client from noticing
// that the handle is unreachable (nothing in the client points back at a Future).
import { DaskError } from "../errors.ts";
import type { Key } from "../protocol/values.ts";
import type { FutureStatus } from "./state.ts";

/** What a Future needs from its client (implemented by Client; an interface to avoid an import cycle). */
export interface FutureHost {
  futureStatus(key: Key): FutureStatus;
  /** Waits until the key is finished/erred/cancelled; resolves with the final status. */
  waitKey(key: Key, timeoutMs?: number): Promise<FutureStatus>;
  /** Gathers one key's value (waits first); rejects with the task's error. */
  resultOf(key: Key, timeoutMs?: number): Promise<unknown>;
  /** The task's error as a DaskError, or undefined if it did not fail. */
  exceptionOf(key: Key): Promise<Error | undefined>;
  cancelKeys(keys: Key[]): Promise<void>;
  releaseHandle(future: Future): void;
}

/**
 * A failed task: `key` names it, `remoteText` is the worker's exception text as the scheduler
 * forwarded it ("builtins.ValueError: boom"), `tracebackText` the traceback when readable.
 */
export class TaskError extends DaskError {
  readonly key: Key;
  readonly remoteText: string;
  readonly tracebackText: string;
  constructor(key: Key, remoteText: string, tracebackText = "") {
    super("DASK_ERR_TASK_FAILED", `task ${JSON.stringify(key)} failed: ${remoteText || "(no exception text)"}`);
    this.name = "TaskError";
    this.key = key;
    this.remoteText = remoteText;
    this.tracebackText = tracebackText;
  }
}

export class Future {
  readonly key: Key;
  readonly client: FutureHost;
  #released = false;

  constructor(key: Key, client: FutureHost) {
    this.key = key;
    this.client = client;
  }

  /** "pending" until the scheduler reports the key; "cancelled" once released by this handle. */
  get status(): FutureStatus {
    return this.#released ? "cancelled" : this.client.futureStatus(this.key);
  }

  get released(): boolean {
    return this.#released;
  }

  /** True once finished, erred or cancelled (a lost key is being recomputed: not done). */
  done(): boolean {
    const s = this.status;
    return s === "finished" || s === "error" || s === "cancelled";
  }

  /**
   * The value. Rejects with TaskError (DASK_ERR_TASK_FAILED) if the task failed,
   * DASK_ERR_CANCELLED / DASK_ERR_SCHEDULER_LOST / DASK_ERR_FUTURE_RELEASED otherwise, and
   * DASK_ERR_TIMEOUT after `timeoutMs` (the future stays valid).
   */
  result(timeoutMs?: number): Promise<unknown> {
    if (this.#released) return Promise.reject(released(this.key));
    return this.client.resultOf(this.key, timeoutMs);
  }

  /** The task's error once it finished or failed (undefined when it succeeded). */
  async exception(): Promise<Error | undefined> {
    if (this.#released) throw released(this.key);
    return this.client.exceptionOf(this.key);
  }

  /** Cancels the key on the scheduler (for every handle on it, as in dask). */
  cancel(): Promise<void> {
    return this.client.cancelKeys([this.key]);
  }

  /** Drops this handle's reference now; the key is released when no handle holds it. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.client.releaseHandle(this);
  }

  /** Two submissions that pass a future tokenize it by its key (dask's Future.__dask_tokenize__). */
  __dask_tokenize__(): unknown {
    return ["dask-wasm.Future", this.key];
  }

  toString(): string {
    return `<Future: ${this.status}, key: ${JSON.stringify(this.key)}>`;
  }
}

function released(key: Key): DaskError {
  return new DaskError("DASK_ERR_FUTURE_RELEASED", `future ${JSON.stringify(key)} was released`);
}
