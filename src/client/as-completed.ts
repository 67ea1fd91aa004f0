// asCompleted: futures in the order they finish (distributed client.py `as_completed`).
//
// Role: an async iterator over anything with a `result()` promise (the client's Future, or any
// thenable-producing handle), yielding each entry once, as soon as it settles — finished, erred,
// cancelled or lost all count as "completed", as in dask, where as_completed yields a future
// whatever its final state and leaves it to the caller to ask `status` or `result()`.
// Entries can be added while iterating (`add`), which is how dask users grow a work queue.
//
// Must not: own sockets or timers, release futures (the caller's references keep them), or let
// an erred future's rejection escape unhandled (every rejection is caught here; the caller
// reads the error from the future's own result()).

/**
 * What asCompleted needs from a future: a promise that settles when it is done. A client Future
 * (src/client/future.ts) also exposes `client.waitKey(key)`, which waits WITHOUT fetching the
 * value; it is preferred when present, so iterating 10,000 futures moves no data (dask's
 * as_completed does not gather either, unless with_results=True).
 */
export interface Completable {
  result(): Promise<unknown>;
  readonly key?: unknown;
  readonly client?: { waitKey?(key: never): Promise<unknown> };
}

export interface AsCompletedOptions<F = unknown> {
  /** Called once per entry as it settles, before it is yielded (progress bars hook in here). */
  onSettled?: (future: F) => void;
}

/**
 * Iterates futures in completion order. Each `add` yields exactly once (adding the same future
 * twice yields it twice, as dask's as_completed does). The iterator ends when every added entry
 * has been yielded; adding after the end starts nothing new — create another one.
 */
export class AsCompleted<F extends Completable> implements AsyncIterableIterator<F> {
  // Settled, not yet yielded: #ready[#head..]. A head index instead of Array.shift(), which is
  // O(n) per call and made draining 10,000 settled futures quadratic (bench/micro/as-completed).
  #ready: F[] = [];
  #head = 0;
  #pending = 0;
  #finished = false;
  // Set by return() (a `break`): later settlements are dropped, next() ends at once.
  #stopped = false;
  // Consumers waiting in next() while nothing is ready (more than one if next() is called
  // again before the previous promise resolved: each gets its own entry, in call order).
  #waiters: Array<(r: IteratorResult<F>) => void> = [];
  #onSettled: AsCompletedOptions<F>["onSettled"];

  constructor(futures: Iterable<F> = [], opts: AsCompletedOptions<F> = {}) {
    this.#onSettled = opts.onSettled;
    this.update(futures);
  }

  /** Adds one entry; it is yielded once it settles. */
  add(future: F): void {
    if (this.#finished) throw new TypeError("asCompleted: cannot add to an iterator that has ended");
    this.#pending++;
    // Both branches settle the entry, so an erred (or lost-scheduler) future never becomes an
    // unhandled rejection here; the caller sees the error from result() when it asks.
    const waitKey = future.client?.waitKey;
    const settled = typeof waitKey === "function" ? waitKey.call(future.client, future.key as never) : future.result();
    settled.then(
      () => this.#settle(future),
      () => this.#settle(future),
    );
  }

  /** Adds several entries. */
  update(futures: Iterable<F>): void {
    for (const f of futures) this.add(f);
  }

  /** Entries added and not yet yielded (pending plus settled-but-unread). */
  get count(): number {
    return this.#pending + this.#readyCount();
  }

  isEmpty(): boolean {
    return this.count === 0;
  }

  #settle(future: F): void {
    this.#pending--;
    if (this.#stopped) return;
    try {
      this.#onSettled?.(future);
    } catch {
      // A failing observer (a progress bar writing to a closed stream) must not lose the entry.
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter({ value: future, done: false });
    else this.#ready.push(future);
    this.#maybeEnd();
  }

  #maybeEnd(): void {
    if (this.#pending === 0 && this.#readyCount() === 0) {
      // Every waiter still queued asked for more entries than there are: they end.
      for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
    }
  }

  #readyCount(): number {
    return this.#ready.length - this.#head;
  }

  /** The oldest settled entry (callers check #readyCount() first). */
  #take(): F {
    const f = this.#ready[this.#head]!;
    this.#ready[this.#head++] = undefined as unknown as F; // drop the reference for the GC
    // Compact once the consumed prefix is half the array: amortised O(1) per entry.
    if (this.#head >= 1024 && this.#head * 2 >= this.#ready.length) {
      this.#ready = this.#ready.slice(this.#head);
      this.#head = 0;
    }
    return f;
  }

  /** Every settled entry, oldest first; the queue is empty afterwards. */
  #drain(): F[] {
    const out = this.#ready.slice(this.#head);
    this.#ready = [];
    this.#head = 0;
    return out;
  }

  next(): Promise<IteratorResult<F>> {
    if (this.#stopped) return Promise.resolve({ value: undefined, done: true });
    if (this.#readyCount() > 0) return Promise.resolve({ value: this.#take(), done: false });
    if (this.#pending === 0) {
      this.#finished = true;
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Stops early (a `break` in for-await); entries still pending are simply not yielded. */
  return(): Promise<IteratorResult<F>> {
    this.#finished = true;
    this.#stopped = true;
    this.#drain();
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  /**
   * Every entry already settled, waiting for at least one if none is (dask's `next_batch`).
   * Empty only when nothing is left.
   */
  async nextBatch(): Promise<F[]> {
    if (this.#readyCount() === 0) {
      const first = await this.next();
      if (first.done) return [];
      return [first.value, ...this.#drain()];
    }
    return this.#drain();
  }

  /**
   * `[future, value]` pairs in completion order (dask's `with_results=True`): the value is
   * fetched with `result()` as each entry is yielded; an erred entry throws its error from the
   * loop, as dask's `raise_errors=True` does.
   */
  async *withResults(): AsyncGenerator<[F, unknown]> {
    for await (const f of this) yield [f, await f.result()];
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** `for await (const f of asCompleted(futures))` — each future once, in the order they finish. */
export function asCompleted<F extends Completable>(futures: Iterable<F> = [], opts: AsCompletedOptions<F> = {}): AsCompleted<F> {
  return new AsCompleted(futures, opts);
}
