// worker_threads entry of the executor: one of `nthreads` threads that run tasks.
//
// On start it imports the --module files (workerData.modules, absolute file URLs) and answers
// {t:"ready"} (or {t:"load-error"}); then for each {t:"call"} it runs one task and answers
// {t:"done"} with the value or the error (name, message, stack, code). One task at a time: the
// executor never posts a second call before the first is done.
//
// Must not: touch the worker's state, store or sockets (it has none), or let a task's throw
// escape (every outcome is a message). A task that kills the thread (process.exit, OOM) is
// seen by the executor as an `exit` event; the executor fails that task and starts a new thread.
//
// Wasm ABI (numbers only, for now): the executor posts the compiled WebAssembly.Module (compiled
// once per worker process, keyed by sha256), this thread instantiates it once per hash and calls
// the named export with the task's remaining arguments. Arguments must be numbers, bigints (i64)
// or booleans; the result is a number, a bigint (i64) or undefined (void). Imports: only
// AssemblyScript's `env.abort` (it traps with the message position); a module that imports
// anything else (memory, tables, other functions) is refused. A trap (WebAssembly.RuntimeError)
// drops this thread's instance of that module, so the next call starts from a fresh instance.
import { parentPort, workerData } from "node:worker_threads";
import { loadModules } from "./modules.ts";
import { fromClone, toClone } from "./clone.ts";
import { gcFunction } from "../runtime/gc.node.ts";
import type { FunctionSpec } from "./run-spec.ts";
import { errorFields as fieldsOf, nowSeconds, runTaskCall, SourceCache, stopAfter, WasmInstances, type RunContext } from "./task-runner.ts";

/** Thread configuration (set by the executor). */
export interface ThreadData {
  modules: string[];
  allowSource: boolean;
  workerName: string;
  thread: number;
}

/** A call as posted by the executor (args already without the Wasm module bytes). */
export interface ThreadCall {
  t: "call";
  id: number;
  fn: FunctionSpec;
  args: unknown[];
  kwargs: Record<string, unknown>;
  wasm?: { hash: string; module?: WebAssembly.Module };
}

export type ThreadReply =
  | { t: "ready" }
  | { t: "load-error"; message: string; code?: string }
  | { t: "done"; id: number; ok: true; value: unknown; start: number; stop: number }
  | { t: "done"; id: number; ok: false; typeName: string; message: string; stack: string; code?: string; start: number; stop: number; trap: boolean };

const SELF = import.meta.url;
/** The shared runner's frames (runTaskCall, WasmInstances.call) are ours too, not the task's. */
const RUNNER = new URL("./task-runner.ts", import.meta.url).href;

/**
 * The task's part of a V8 stack: frames below the task (this file's dispatch, Node internals)
 * say nothing to the client that reads the text in Python.
 */
function taskStack(stack: string): string {
  return stack
    .split("\n")
    .filter((line) => !line.includes(SELF) && !line.includes(RUNNER) && !line.includes("(node:internal/") && !/^\s+at node:internal\//.test(line))
    .join("\n");
}

const errorFields = (e: unknown): ReturnType<typeof fieldsOf> => fieldsOf(e, taskStack);

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("src/worker/thread.ts runs only as a worker_threads entry");
  const data = workerData as ThreadData;
  // What a task may ask about where it runs (examples/tasks.js `whoami`).
  (globalThis as { daskWasm?: unknown }).daskWasm = Object.freeze({ workerName: data.workerName, thread: data.thread });
  let ctx: RunContext;
  try {
    ctx = { registry: await loadModules(data.modules), allowSource: data.allowSource, wasm: new WasmInstances(), sources: new SourceCache() };
  } catch (e) {
    const f = errorFields(e);
    port.postMessage({ t: "load-error", message: f.message, ...(f.code ? { code: f.code } : {}) } satisfies ThreadReply);
    return;
  }
  port.on("message", (call: ThreadCall | { t: "gc" }) => {
    // The worker released a lot of memory: collect this thread's garbage too (runtime/gc.node.ts).
    if (call.t === "gc") return void gcFunction()?.();
    void (async () => {
      const start = nowSeconds();
      let reply: ThreadReply;
      try {
        // The executor posts a module once per thread; later calls carry only its hash.
        if (call.wasm?.module) ctx.wasm.add(call.wasm.hash, call.wasm.module);
        const value = await runTaskCall(ctx, call.fn, fromClone(call.args) as unknown[], fromClone(call.kwargs) as Record<string, unknown>, call.wasm?.hash);
        reply = { t: "done", id: call.id, ok: true, value: toClone(value), start, stop: stopAfter(start) };
        // Throws DataCloneError for a value structured clone refuses (a function, a
        // symbol…): caught below like a throw of the task itself.
        port.postMessage(reply);
        return;
      } catch (e) {
        reply = { t: "done", id: call.id, ok: false, ...errorFields(e), start, stop: stopAfter(start), trap: e instanceof WebAssembly.RuntimeError && call.fn.kind === "wasm" };
      }
      try {
        port.postMessage(reply);
      } catch (e) {
        // Error replies hold strings and numbers only; this is a last guard, not a path.
        port.postMessage({ t: "done", id: call.id, ok: false, ...errorFields(e), start, stop: stopAfter(start), trap: false } satisfies ThreadReply);
      }
    })();
  });
  port.postMessage({ t: "ready" } satisfies ThreadReply);
}

await main();
