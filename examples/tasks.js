// Example task module for dask-wasm workers (`--module ./examples/tasks.js`): every exported
// function is a task a client can name, e.g. `dask_wasm.js("tasks.js#inc")` from Python.
// Used by the executor tests and the README's main job. Plain JS so any runtime loads it.
//
// Calling convention (src/worker/executor.ts): fn(...args), plus one trailing kwargs object
// when the task has kwargs. May be async. Values cross threads by structured clone.

export function inc(x) {
  return x + 1;
}

export function add(a, b) {
  return a + b;
}

export function double(x) {
  return x * 2;
}

/** sum(list) or sum(a, b, c...). */
export function sum(...xs) {
  // one array (a list, or a typed array / numpy argument) or several numbers
  const items = xs.length === 1 && (Array.isArray(xs[0]) || ArrayBuffer.isView(xs[0])) ? xs[0] : xs;
  let s = 0;
  for (const x of items) s += x;
  return s;
}

/** async: resolves on a later turn, to show that awaited results are returned. */
export async function incLater(x) {
  await Promise.resolve();
  return x + 1;
}

/**
 * Records wall-clock start and stop (ms since the epoch) around a blocking wait of `ms`
 * milliseconds. Atomics.wait blocks this thread without spinning, so stamps of two tasks on two
 * threads overlap and on one thread they cannot.
 *
 * `barrier` (optional; tests in one process pass it): an Int32Array of 2 over a SharedArrayBuffer
 * shared by the tasks, [tasks inside now, filled flag]. A task enters, waits (at most `ms`) until
 * `parties` tasks are inside at the same time, holds 10 ms more if they were, and leaves.
 * `together` says the barrier filled: at that instant every party had started and none had
 * stopped, so overlap is a fact, not a timing accident. With fewer threads than parties it never
 * fills (the first tasks time out and leave before the next can enter).
 */
export function stamp(ms, barrier, parties = 2) {
  const start = performance.timeOrigin + performance.now();
  let together = false;
  if (barrier) {
    if (Atomics.add(barrier, 0, 1) + 1 >= parties) {
      Atomics.store(barrier, 1, 1);
      Atomics.notify(barrier, 1);
    }
    const deadline = performance.now() + ms;
    while (Atomics.load(barrier, 1) === 0) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(barrier, 1, 0, left);
    }
    together = Atomics.load(barrier, 1) === 1;
    // The hold keeps the overlap far wider than any clock difference between threads.
    if (together) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    Atomics.sub(barrier, 0, 1);
  } else if (ms > 0) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  }
  const stop = performance.timeOrigin + performance.now();
  return { start, stop, together };
}

/** Throws an Error with `msg` (a task failure the client raises). */
export function fail(msg) {
  throw new Error(msg);
}

/** Throws a TypeError (maps to Python's TypeError). */
export function failType(msg) {
  throw new TypeError(msg);
}

export function echo(x) {
  return x;
}

/** Float64Array [0, 0.5, 1, ...] of length n (reaches Python as a numpy float64 array). */
export function typed(n) {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = i / 2;
  return a;
}

/** The worker's name (set by the executor thread), else DASK_WASM_WORKER_NAME, else null. */
export function whoami() {
  return globalThis.daskWasm?.workerName || globalThis.process?.env?.DASK_WASM_WORKER_NAME || null;
}

/** Ends the thread running it (the executor must replace the thread and fail this task). */
export function exitThread(code) {
  globalThis.process.exit(code ?? 3);
}
