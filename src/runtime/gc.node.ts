// A full garbage collection on demand, for Node (main thread and worker threads).
// Why: values the worker releases are ArrayBuffers outside the V8 heap; their memory goes back
// only when V8 collects the wrappers, and an idle worker does not allocate, so V8 would not
// collect for a long time. A Python worker frees on release (refcounting); the worker asks for
// a collection after releasing a lot (src/worker/worker.ts) so its RSS returns to idle too.
// `--expose-gc` set at run time and read back through a fresh context is the documented way
// to reach gc() without a command-line flag (node:v8 setFlagsFromString).
import v8 from "node:v8";
import vm from "node:vm";

let cached: (() => void) | null | undefined;

/** The gc() function of this isolate, or null where it cannot be had. */
export function gcFunction(): (() => void) | null {
  if (cached !== undefined) return cached;
  try {
    v8.setFlagsFromString("--expose-gc");
    const fn = vm.runInNewContext("gc") as unknown;
    cached = typeof fn === "function" ? (fn as () => void) : null;
  } catch {
    cached = null;
  }
  return cached;
}
