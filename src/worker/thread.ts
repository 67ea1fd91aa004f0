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
import { performance } from "node:perf_hooks";
import { loadModules, lookupExport } from "./modules.ts";
import { fromClone, toClone } from "./clone.ts";
import { gcFunction } from "../runtime/gc.node.ts";
import type { Registry } from "./modules.ts";
import type { FunctionSpec } from "./run-spec.ts";

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

/** Wall-clock seconds since the epoch, as Python's time() (task-finished startstops use it). */
function now(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}

const SELF = import.meta.url;

/**
 * The task's part of a V8 stack: frames below the task (this file's dispatch, Node internals)
 * say nothing to the client that reads the text in Python.
 */
function taskStack(stack: string): string {
  return stack
    .split("\n")
    .filter((line) => !line.includes(SELF) && !line.includes("(node:internal/") && !/^\s+at node:internal\//.test(line))
    .join("\n");
}

/** Any thrown value -> the error fields of a reply. */
function errorFields(e: unknown): { typeName: string; message: string; stack: string; code?: string } {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return {
      typeName: e.name || "Error",
      message: e.message,
      stack: typeof e.stack === "string" ? taskStack(e.stack) : "",
      ...(typeof code === "string" ? { code } : {}),
    };
  }
  // `throw "x"` or `throw 42`: no stack exists; the value's text is the message.
  return { typeName: "Error", message: String(e), stack: "" };
}

function codedError(code: string, name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  (e as Error & { code: string }).code = code;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Wasm: modules (posted once per hash) and instances (dropped on trap).

const wasmModules = new Map<string, WebAssembly.Module>();
const wasmInstances = new Map<string, WebAssembly.Instance>();

function wasmImports(module: WebAssembly.Module): WebAssembly.Imports {
  const env: Record<string, unknown> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === "env" && imp.name === "abort" && imp.kind === "function") {
      // AssemblyScript abort(msgPtr, filePtr, line, column): an assertion failed; a trap in effect.
      env.abort = (_msg: number, _file: number, line: number, col: number): never => {
        throw new WebAssembly.RuntimeError(`abort called at line ${line}:${col}`);
      };
      continue;
    }
    throw codedError("DASK_ERR_WASM_IMPORT", "TypeError", `Wasm import ${imp.module}.${imp.name} (${imp.kind}) is not provided (ABI: numbers only, env.abort)`);
  }
  return { env } as WebAssembly.Imports;
}

function toWasmArg(v: unknown, i: number): number | bigint {
  if (typeof v === "number" || typeof v === "bigint") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  throw codedError("DASK_ERR_WASM_ABI", "TypeError", `Wasm argument ${i + 1} is a ${v === null ? "None" : typeof v}; the ABI takes numbers only`);
}

function callWasm(call: ThreadCall, exportName: string): unknown {
  const w = call.wasm;
  if (!w) throw codedError("DASK_ERR_WASM_MODULE", "TypeError", "a Wasm call without its module");
  if (w.module) wasmModules.set(w.hash, w.module);
  const module = wasmModules.get(w.hash);
  if (!module) throw codedError("DASK_ERR_WASM_MODULE", "Error", `Wasm module ${w.hash.slice(0, 12)} was never posted to this thread`);
  let inst = wasmInstances.get(w.hash);
  if (!inst) {
    inst = new WebAssembly.Instance(module, wasmImports(module));
    wasmInstances.set(w.hash, inst);
  }
  const fn = inst.exports[exportName];
  if (typeof fn !== "function") throw codedError("DASK_ERR_UNKNOWN_FUNCTION", "TypeError", `the Wasm module has no exported function ${JSON.stringify(exportName)}`);
  const args = call.args.map(toWasmArg);
  try {
    return (fn as (...a: Array<number | bigint>) => unknown)(...args);
  } catch (e) {
    // A trapped instance may have left its memory and globals half-updated: never reuse it.
    if (e instanceof WebAssembly.RuntimeError) wasmInstances.delete(w.hash);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Shipped source: compiled once per source text, only when the worker allows it.

const sources = new Map<string, (...args: unknown[]) => unknown>();
const SOURCE_CACHE_MAX = 256;

function sourceFunction(source: string): (...args: unknown[]) => unknown {
  let fn = sources.get(source);
  if (!fn) {
    // The one place code arrives as text (DESIGN.md "Tasks": --allow-source only).
    const made: unknown = new Function(`return (${source})`)();
    if (typeof made !== "function") throw codedError("DASK_ERR_TASK_SPEC", "TypeError", "shipped source is not a function expression");
    fn = made as (...args: unknown[]) => unknown;
    // Bounded: a client shipping ever-new source must not grow the thread without limit.
    if (sources.size >= SOURCE_CACHE_MAX) sources.delete(sources.keys().next().value!);
    sources.set(source, fn);
  }
  return fn;
}

// ---------------------------------------------------------------------------------------------

/** kwargs are passed as one trailing object, only when there are any (documented in executor.ts). */
function withKwargs(args: unknown[], kwargs: Record<string, unknown>): unknown[] {
  return Object.keys(kwargs).length > 0 ? [...args, kwargs] : args;
}

async function runCall(reg: Registry, data: ThreadData, call: ThreadCall): Promise<unknown> {
  const fn = call.fn;
  if (fn.kind === "js") return await lookupExport(reg, fn.ref)(...withKwargs(call.args, call.kwargs));
  if (fn.kind === "wasm") return callWasm(call, fn.export);
  if (!data.allowSource) {
    // The executor refuses first; this is the second lock on the same door.
    throw codedError("DASK_ERR_SOURCE_NOT_ALLOWED", "PermissionError", "shipped source runs only on workers started with --allow-source");
  }
  return await sourceFunction(fn.source)(...withKwargs(call.args, call.kwargs));
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("src/worker/thread.ts runs only as a worker_threads entry");
  const data = workerData as ThreadData;
  // What a task may ask about where it runs (examples/tasks.js `whoami`).
  (globalThis as { daskWasm?: unknown }).daskWasm = Object.freeze({ workerName: data.workerName, thread: data.thread });
  let reg: Registry;
  try {
    reg = await loadModules(data.modules);
  } catch (e) {
    const f = errorFields(e);
    port.postMessage({ t: "load-error", message: f.message, ...(f.code ? { code: f.code } : {}) } satisfies ThreadReply);
    return;
  }
  port.on("message", (call: ThreadCall | { t: "gc" }) => {
    // The worker released a lot of memory: collect this thread's garbage too (runtime/gc.node.ts).
    if (call.t === "gc") return void gcFunction()?.();
    void (async () => {
      const start = now();
      let reply: ThreadReply;
      try {
        const value = await runCall(reg, data, { ...call, args: fromClone(call.args) as unknown[], kwargs: fromClone(call.kwargs) as Record<string, unknown> });
        reply = { t: "done", id: call.id, ok: true, value: toClone(value), start, stop: now() };
        // Throws DataCloneError for a value structured clone refuses (a function, a
        // symbol…): caught below like a throw of the task itself.
        port.postMessage(reply);
        return;
      } catch (e) {
        reply = { t: "done", id: call.id, ok: false, ...errorFields(e), start, stop: now(), trap: e instanceof WebAssembly.RuntimeError && call.fn.kind === "wasm" };
      }
      try {
        port.postMessage(reply);
      } catch (e) {
        // Error replies hold strings and numbers only; this is a last guard, not a path.
        port.postMessage({ t: "done", id: call.id, ok: false, ...errorFields(e), start, stop: now(), trap: false } satisfies ThreadReply);
      }
    })();
  });
  port.postMessage({ t: "ready" } satisfies ThreadReply);
}

await main();
