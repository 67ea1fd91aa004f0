// A one-consumer async queue of incoming messages with a terminal error: what every Comm's
// `read()` sits on. Pure (no IO, no timers): producers push, the transport fails it once.
import type { DaskError } from "../errors.ts";
import { CommError } from "./comm.ts";

export class MessageQueue {
  #items: unknown[] = [];
  #head = 0;
  #waiter: { resolve: (v: unknown) => void; reject: (e: unknown) => void } | undefined;
  #error: DaskError | undefined;

  /** True once `fail` was called; messages queued before it can still be read. */
  get failed(): boolean {
    return this.#error !== undefined;
  }

  push(msg: unknown): void {
    if (this.#error) return; // the comm is closed: late bytes are dropped, as a closed socket would
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve(msg);
      return;
    }
    this.#items.push(msg);
  }

  /**
   * Next message. Messages that arrived before the failure are still delivered (a peer may send
   * its last reply and close at once, e.g. `{"op": "close", "reply": true}` -> "OK" then EOF).
   */
  shift(): Promise<unknown> {
    if (this.#head < this.#items.length) {
      const msg = this.#items[this.#head];
      this.#items[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        // Compact now and then so a long-lived stream does not keep a growing dead prefix.
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve(msg);
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#waiter) return Promise.reject(new CommError("DASK_ERR_COMM_CONCURRENT_READ", "a second read() started before the first settled"));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Ends the queue: a pending and every later `shift()` (once drained) rejects with `error`. */
  fail(error: DaskError): void {
    if (this.#error) return;
    this.#error = error;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.reject(error);
    }
  }

  /** Drops undelivered messages (abort: nothing more should be read). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
