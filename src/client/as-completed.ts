// asCompleted: futures in the order they finish (distributed client.py `as_completed`).
//
// Role: an async iterator over anything with a `result()` promise (the client's Future, or any
// thenable-producing handle), yielding each entry once, as soon as it settles — finished, erred,
// cancelled or lost all count as "completed", as in dask, where as_completed yields a future
// whatever its final state and leaves it to the caller to ask `status` or `result()`.
// Entries can be added while iterating (`add`), which is how dask users grow a work queue.
//
// Must not: own sockets or timers, release futures (the caller's references keep them), or let
// an erred future's rejection escape unhandled (every rejection is caught here and kept as the
// entry's outcome).

/** The one thing asCompleted needs from a future: a promise that settles when it is done. */
export interface Completable {
  result(): Promise<unknown>;
}

/** How an entry settled: its value, or the error `result()` rejected with. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Settled<F> {
  future: F;
  outcome: Outcome;
}

export interface AsCompletedOptions {
  /** Called once per entry as it settles, before it is yielded (progress bars hook in here). */
  onSettled?: (outcome: Outcome) => void;
}

/**
 * Iterates futures in completion order. Each `add` yields exactly once (adding the same future
 * twice yields it twice, as dask's as_completed does). The iterator ends when every added entry
 * has been yielded; adding after the end starts nothing new — create another one.
 */
export class AsCompleted<F extends Completable> implements AsyncIterableIterator<F> {
  #ready: Settled<F>[] = [];
  #pending = 0;
  #finished = false;
  // Set by return() (a `break`): later settlements are dropped, next() ends at once.
  #stopped = false;
  // Consumers waiting in next() while nothing is ready (more than one if next() is called
  // again before the previous promise resolved: each gets its own entry, in call order).
  #waiters: Array<(r: IteratorResult<F>) => void> = [];
  #onSettled: AsCompletedOptions["onSettled"];
  #outcomes = new WeakMap<object, Outcome>();

  constructor(futures: Iterable<F> = [], opts: AsCompletedOptions = {}) {
    this.#onSettled = opts.onSettled;
    this.update(futures);
  }

  /** Adds one entry; it is yielded once it settles. */
  add(future: F): void {
    if (this.#finished) throw new TypeError("asCompleted: cannot add to an iterator that has ended");
    this.#pending++;
    // Both branches are handled, so an erred future never becomes an unhandled rejection.
    future.result().then(
      (value) => this.#settle(future, { ok: true, value }),
      (error: unknown) => this.#settle(future, { ok: false, error }),
    );
  }

  /** Adds several entries. */
  update(futures: Iterable<F>): void {
    for (const f of futures) this.add(f);
  }

  /** Entries added and not yet yielded (pending plus settled-but-unread). */
  get count(): number {
    return this.#pending + this.#ready.length;
  }

  isEmpty(): boolean {
    return this.count === 0;
  }

  /**
   * How the most recently yielded occurrence of `future` settled, without awaiting its
   * `result()` again (undefined for a future this iterator has not yielded).
   */
  outcome(future: F): Outcome | undefined {
    return typeof future === "object" && future !== null ? this.#outcomes.get(future) : undefined;
  }

  #settle(future: F, outcome: Outcome): void {
    this.#pending--;
    if (this.#stopped) return;
    if (typeof future === "object" && future !== null) this.#outcomes.set(future, outcome);
    try {
      this.#onSettled?.(outcome);
    } catch {
      // A failing observer (a progress bar writing to a closed stream) must not lose the entry.
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter({ value: future, done: false });
    else this.#ready.push({ future, outcome });
    this.#maybeEnd();
  }

  #maybeEnd(): void {
    if (this.#pending === 0 && this.#ready.length === 0) {
      // Every waiter still queued asked for more entries than there are: they end.
      for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<F>> {
    if (this.#stopped) return Promise.resolve({ value: undefined, done: true });
    const item = this.#ready.shift();
    if (item) return Promise.resolve({ value: item.future, done: false });
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
    this.#ready.length = 0;
    for (const w of this.#waiters.splice(0)) w({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  /**
   * Every entry already settled, waiting for at least one if none is (dask's `next_batch`).
   * Empty only when nothing is left.
   */
  async nextBatch(): Promise<F[]> {
    if (this.#ready.length === 0) {
      const first = await this.next();
      if (first.done) return [];
      return [first.value, ...this.#ready.splice(0).map((s) => s.future)];
    }
    return this.#ready.splice(0).map((s) => s.future);
  }

  /**
   * `[future, value]` pairs in completion order (dask's `with_results=True`); an erred entry
   * throws its error from the loop, as dask's `raise_errors=True` does.
   */
  async *withResults(): AsyncGenerator<[F, unknown]> {
    for await (const f of this) {
      const outcome = this.outcome(f)!;
      if (!outcome.ok) throw outcome.error;
      yield [f, outcome.value];
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** `for await (const f of asCompleted(futures))` — each future once, in the order they finish. */
export function asCompleted<F extends Completable>(futures: Iterable<F> = [], opts: AsCompletedOptions = {}): AsCompleted<F> {
  return new AsCompleted(futures, opts);
}
