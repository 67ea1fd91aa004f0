// Example Wasm task module (AssemblyScript), built to build/examples/tasks.wasm by
// `npx asc examples/wasm/assembly/index.ts --config examples/wasm/asconfig.json --target release`.
// A Python client scatters the .wasm bytes and submits `dask_wasm.wasm("add")` with the module
// future as first argument. ABI (src/worker/thread.ts): numbers in, a number out, no imports.

/** a + b in double precision. */
export function add(a: f64, b: f64): f64 {
  return a + b;
}

/** The n-th Fibonacci number (fib(0) = 0, fib(1) = 1), i32 wrapping past fib(46). */
export function fib(n: i32): i32 {
  let a: i32 = 0;
  let b: i32 = 1;
  for (let i: i32 = 0; i < n; i++) {
    const t = a + b;
    a = b;
    b = t;
  }
  return a;
}

let calls: i32 = 0;

/** Counts calls in this instance: shows that a trap drops the instance (the count restarts). */
export function bump(): i32 {
  calls += 1;
  return calls;
}

/** Always traps (`unreachable`): the worker reports a RuntimeError and drops this instance. */
export function trap(): void {
  unreachable();
}
