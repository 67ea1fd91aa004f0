// Single-machine schedulers for a {key: task} graph, with no dask-scheduler: dask's get_sync
// (one task at a time, in this thread), the threaded scheduler (worker_threads through the
// worker's Executor, src/worker/executor.ts, which also runs the Wasm core) and the
// multiprocessing one (child processes, local-scheduler-child.ts). Tasks name module exports
// ("tasks.js#inc") or Wasm exports ("dask-wasm:wasm:add", module bytes as the first argument,
// the executor's numbers-only ABI) on all three; JS function objects on "sync" only.
//
// Role: the IO edge of graph.ts. `executionOrder` is pure (which tasks are needed, in which
// order); `getSync`/`getThreads`/`getProcesses` own their threads/processes and stop every one
// of them before they settle. Must not: change the meaning of a graph between schedulers —
// dependency keys inside args are substituted exactly as the dask-wasm worker does
// (run-spec.ts packData), and functions are called as the executor calls them
// (`fn(...args)`, plus one trailing kwargs object when there are kwargs).
//
// Failure policy (as dask's local schedulers): the first task that still fails after its
// retries rejects the whole call with THAT task's error (the original Error object for sync;
// for threads/processes an Error rebuilt with the remote name, message, stack and code), with
// a `key` property naming the task. A dead child process fails its task with
// DASK_ERR_CHILD_PROCESS and is replaced; a dead thread, with the executor's DASK_ERR_THREAD_DIED.
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { ConfigError, DaskError } from "../errors.ts";
import { Executor } from "../worker/executor.ts";
import { loadModules, lookupExport, moduleUrl, wasmHash } from "../worker/modules.ts";
import type { Registry } from "../worker/modules.ts";
import { packData, parseFunctionRef } from "../worker/run-spec.ts";
import { fromClone, toClone } from "../worker/clone.ts";
import type { FunctionSpec } from "../worker/run-spec.ts";
import type { ChildReply, ChildCall } from "./local-scheduler-child.ts";

// eslint-style any: task functions take whatever the graph gives them.
// deno-lint-ignore no-explicit-any
export type TaskFunction = (...args: any[]) => unknown;

export type LocalSchedulerName = "sync" | "threads" | "processes";

/** A task as the local schedulers read it (graph.ts GraphTask is one). */
export interface LocalTask {
  fn: string | TaskFunction;
  args: readonly unknown[];
  kwargs?: Record<string, unknown>;
  deps: readonly string[];
}

export interface LocalGraph {
  tasks: ReadonlyMap<string, LocalTask>;
  keys: readonly string[];
  retries?: number;
}

export interface LocalOptions {
  /** Module files whose exports registered references name ("tasks.js#inc" = export inc of tasks.js). */
  modules?: string[];
  /** Extra named functions, sync scheduler only: {"my#f": f}. */
  functions?: Record<string, TaskFunction>;
  /** Threads or processes (default: os.availableParallelism()). */
  numWorkers?: number;
  /** Extra attempts per failing task (DaskExecutor / dask `retries`). */
  retries?: number;
  /** Called once per task that finished (a progress bar's tick); must not throw. */
  onTaskDone?: (key: string) => void;
}

/**
 * The tasks needed for `keys` (dask's cull), in a dependencies-first order that finishes one
 * requested key's subgraph before starting the next (depth-first, as dask.order prefers: fewer
 * intermediate results alive). Throws ConfigError on a missing key or dependency, or a cycle.
 */
export function executionOrder(graph: LocalGraph, keys: readonly string[] = graph.keys): string[] {
  const order: string[] = [];
  const state = new Map<string, 1 | 2>(); // 1 = on the DFS path, 2 = done
  for (const root of keys) {
    if (!graph.tasks.has(root)) throw new ConfigError(`key ${root} is not in the graph`);
    if (state.get(root) === 2) continue;
    // Iterative post-order DFS (deep chains must not overflow the stack).
    const stack: Array<{ key: string; next: number }> = [{ key: root, next: 0 }];
    state.set(root, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = graph.tasks.get(top.key)!.deps;
      if (top.next < deps.length) {
        const dep = deps[top.next++]!;
        if (!graph.tasks.has(dep)) throw new ConfigError(`task ${top.key} depends on ${dep}, which is not in the graph`);
        const s = state.get(dep);
        if (s === 1) throw new ConfigError(`the graph has a cycle through ${dep}`);
        if (s === 2) continue;
        state.set(dep, 1);
        stack.push({ key: dep, next: 0 });
      } else {
        stack.pop();
        state.set(top.key, 2);
        order.push(top.key);
      }
    }
  }
  return order;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Runs one task (dependencies already substituted); never rejects. */
type Runner = (key: string, task: LocalTask, args: unknown[], kwargs: Record<string, unknown>) => Promise<Outcome>;

/** Smallest-first heap of positions in the execution order (ready tasks run in that order). */
class MinHeap {
  readonly #a: number[] = [];
  get size(): number {
    return this.#a.length;
  }
  push(v: number): void {
    const a = this.#a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.#a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && a[l + 1]! < a[l]! ? l + 1 : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

function withKey(error: unknown, key: string): unknown {
  if (error !== null && typeof error === "object" && Object.isExtensible(error) && !("key" in error)) {
    Object.defineProperty(error, "key", { value: key, enumerable: false, configurable: true, writable: true });
  }
  return error;
}

/**
 * The scheduling loop shared by the three schedulers: at most `concurrency` tasks in flight,
 * ready tasks in execution order, a result dropped as soon as no remaining task needs it and
 * it was not asked for.
 */
async function schedule(graph: LocalGraph, run: Runner, concurrency: number, retries: number, onTaskDone?: (key: string) => void): Promise<Map<string, unknown>> {
  const order = executionOrder(graph);
  const index = new Map(order.map((k, i) => [k, i]));
  const waiting = new Map<string, number>(); // key -> unfinished dependency count
  const dependents = new Map<string, string[]>();
  const remainingUses = new Map<string, number>();
  const wanted = new Set(graph.keys);
  const heap = new MinHeap();
  for (const key of order) {
    const deps = [...new Set(graph.tasks.get(key)!.deps)];
    waiting.set(key, deps.length);
    for (const d of deps) {
      let list = dependents.get(d);
      if (!list) dependents.set(d, (list = []));
      list.push(key);
      remainingUses.set(d, (remainingUses.get(d) ?? 0) + 1);
    }
    if (deps.length === 0) heap.push(index.get(key)!);
  }
  // Results of finished tasks still needed by a dependent or asked for by the caller.
  const values = new Map<string, unknown>();
  // Failures so far per key; a task is re-queued while this stays <= retries.
  const attempts = new Map<string, number>();
  let inFlight = 0;
  let finished = 0;
  return await new Promise<Map<string, unknown>>((resolve, reject) => {
    // Set on the first final failure: nothing new launches, late outcomes are ignored (the
    // caller's finally closes the pool, which ends whatever still runs).
    let failed = false;
    const launch = (): void => {
      while (!failed && inFlight < concurrency && heap.size > 0) {
        const key = order[heap.pop()]!;
        const task = graph.tasks.get(key)!;
        let args: unknown[];
        let kwargs: Record<string, unknown>;
        try {
          // Only this task's dependencies are substituted, as on a worker.
          const depValues = new Map(task.deps.map((d) => [d, values.get(d)]));
          args = packData(task.args, depValues) as unknown[];
          kwargs = (task.kwargs === undefined ? {} : packData(task.kwargs, depValues)) as Record<string, unknown>;
        } catch (e) {
          failed = true;
          reject(withKey(e, key));
          return;
        }
        inFlight++;
        // Runners never reject (every outcome is data), so this chain cannot leave an unhandled rejection.
        void run(key, task, args, kwargs).then((o) => settle(key, task, o));
      }
      if (!failed && inFlight === 0 && finished === order.length) {
        const out = new Map<string, unknown>();
        for (const k of graph.keys) out.set(k, values.get(k));
        resolve(out);
      }
    };
    const settle = (key: string, task: LocalTask, o: Outcome): void => {
      inFlight--;
      if (failed) return;
      if (!o.ok) {
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        if (n <= retries) {
          heap.push(index.get(key)!);
          launch();
          return;
        }
        failed = true;
        reject(withKey(o.error, key));
        return;
      }
      // Success: store, let go of inputs nobody else reads, and wake dependents whose inputs are all in.
      values.set(key, o.value);
      finished++;
      onTaskDone?.(key);
      // A task listing the same dependency twice counts it once (it was counted once above).
      for (const d of new Set(task.deps)) {
        const left = remainingUses.get(d)! - 1;
        remainingUses.set(d, left);
        if (left === 0 && !wanted.has(d)) values.delete(d);
      }
      for (const dep of dependents.get(key) ?? []) {
        const w = waiting.get(dep)! - 1;
        waiting.set(dep, w);
        if (w === 0) heap.push(index.get(dep)!);
      }
      launch();
    };
    launch();
  });
}

/**
 * What a reference names: "tasks.js#inc" and "dask-wasm:js:tasks.js#inc" a module export,
 * "dask-wasm:wasm:add" the export `add` of the Wasm module whose bytes are the task's first
 * argument. Shipped source ("dask-wasm:source:") is refused: the local schedulers run only code
 * this process was given.
 */
export function localFunction(fn: string): FunctionSpec {
  const spec = parseFunctionRef(fn);
  if (spec === null) return { kind: "js", ref: fn };
  if (spec.kind === "source") throw new ConfigError("the local schedulers do not run shipped source; put the function in a module (options.modules)");
  return spec;
}

function plainRef(fn: string): string {
  const spec = localFunction(fn);
  return spec.kind === "js" ? spec.ref : fn;
}

// Compiled Wasm modules by content hash (bounded: a graph generating ever-new modules must not grow it forever).
const wasmModules = new Map<string, WebAssembly.Module>();
const WASM_CACHE_MAX = 64;

/**
 * Calls `exportName` of the Wasm module `bytes` with number arguments, in this thread, with the
 * executor's ABI (src/worker/thread.ts: numbers or bigints in, a number out, `env.abort` the
 * only import). A fresh instance per call: a trap can never leave state behind for the next.
 */
export function callWasmExport(bytes: unknown, exportName: string, args: readonly unknown[]): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DaskError("DASK_ERR_WASM_MODULE", "a Wasm task's first argument must be the module's bytes (a Uint8Array)");
  const hash = wasmHash(bytes);
  let module = wasmModules.get(hash);
  if (!module) {
    try {
      module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      throw new DaskError("DASK_ERR_WASM_MODULE", `the Wasm module does not compile: ${(e as Error).message}`, { cause: e });
    }
    if (wasmModules.size >= WASM_CACHE_MAX) wasmModules.delete(wasmModules.keys().next().value!);
    wasmModules.set(hash, module);
  }
  for (const imp of WebAssembly.Module.imports(module)) {
    if (!(imp.module === "env" && imp.name === "abort")) throw new DaskError("DASK_ERR_WASM_IMPORT", `Wasm import ${imp.module}.${imp.name} is not provided (ABI: numbers only, env.abort)`);
  }
  const abort = (_m: number, _f: number, line: number, col: number): never => {
    throw new WebAssembly.RuntimeError(`abort called at line ${line}:${col}`);
  };
  const inst = new WebAssembly.Instance(module, { env: { abort } });
  const fn = inst.exports[exportName];
  if (typeof fn !== "function") throw new DaskError("DASK_ERR_UNKNOWN_FUNCTION", `the Wasm module has no exported function ${JSON.stringify(exportName)}`);
  const nums = args.map((v, i) => {
    if (typeof v === "number" || typeof v === "bigint") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    throw new DaskError("DASK_ERR_WASM_ABI", `Wasm argument ${i + 1} is a ${v === null ? "null" : typeof v}; the ABI takes numbers only`);
  });
  return (fn as (...a: Array<number | bigint>) => unknown)(...nums);
}

function retriesOf(graph: LocalGraph, opts: LocalOptions): number {
  const r = opts.retries ?? graph.retries ?? 0;
  if (!Number.isSafeInteger(r) || r < 0) throw new ConfigError(`retries must be an integer >= 0, got ${String(r)}`);
  return r;
}

function workersOf(opts: LocalOptions): number {
  const n = opts.numWorkers ?? availableParallelism();
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`numWorkers must be an integer >= 1, got ${String(n)}`);
  return n;
}

/** Every task's function must be a string reference for the thread and process pools. */
function refsOnly(graph: LocalGraph, opts: LocalOptions, name: string): void {
  if (opts.functions !== undefined) throw new ConfigError(`options.functions works with scheduler "sync" only; give ${name} modules instead`);
  for (const [key, t] of graph.tasks) {
    if (typeof t.fn !== "string") throw new ConfigError(`task ${key}: a JS function object runs only with scheduler "sync"; ${name} need a registered reference from options.modules`);
  }
}

/** dask's get_sync: one task at a time in this thread (async functions are awaited). */
export async function getSync(graph: LocalGraph, opts: LocalOptions = {}): Promise<Map<string, unknown>> {
  const retries = retriesOf(graph, opts);
  const needsModules = [...graph.tasks.values()].some((t) => typeof t.fn === "string" && localFunction(t.fn).kind === "js" && !(opts.functions && Object.hasOwn(opts.functions, plainRef(t.fn))));
  const reg: Registry = needsModules ? await loadModules((opts.modules ?? []).map(moduleUrl)) : new Map();
  const resolve = (fn: string | TaskFunction): TaskFunction => {
    if (typeof fn === "function") return fn;
    const spec = localFunction(fn);
    if (spec.kind === "wasm") return (bytes: unknown, ...rest: unknown[]) => callWasmExport(bytes, spec.export, rest);
    const ref = plainRef(fn);
    const own = opts.functions && Object.hasOwn(opts.functions, ref) ? opts.functions[ref] : undefined;
    return own ?? lookupExport(reg, ref);
  };
  const runner: Runner = async (_key, task, args, kwargs) => {
    try {
      const f = resolve(task.fn);
      const value = await f(...(Object.keys(kwargs).length > 0 ? [...args, kwargs] : args));
      return { ok: true, value };
    } catch (error) {
      return { ok: false, error };
    }
  };
  return await schedule(graph, runner, 1, retries, opts.onTaskDone);
}

/** An Error rebuilt from a remote outcome's fields (threads and processes). */
function remoteError(f: { typeName: string; message: string; stack: string; code?: string | undefined }): Error {
  const e = f.code !== undefined ? new DaskError(f.code, f.message) : new Error(f.message);
  e.name = f.typeName;
  if (f.stack) e.stack = f.stack;
  return e;
}

/** The threaded scheduler: `numWorkers` worker_threads, each importing `modules`. */
export async function getThreads(graph: LocalGraph, opts: LocalOptions = {}): Promise<Map<string, unknown>> {
  refsOnly(graph, opts, "threads");
  for (const t of graph.tasks.values()) localFunction(t.fn as string); // refuses shipped source up front
  const retries = retriesOf(graph, opts);
  // Graph errors surface before any thread starts; never more threads than tasks to run.
  const nthreads = Math.max(1, Math.min(workersOf(opts), executionOrder(graph).length));
  // The worker's own executor: the same thread entry, clone rules (tuples, NdArrays) and Wasm
  // ABI as a dask-wasm worker, so a graph behaves the same here and on a cluster.
  const ex = new Executor({ nthreads, modules: opts.modules ?? [], allowSource: false, name: "local-threads" });
  try {
    const runner: Runner = async (key, task, args, kwargs) => {
      const o = await ex.run({ key, fn: localFunction(task.fn as string), args, kwargs });
      return o.status === "ok" ? { ok: true, value: o.value } : { ok: false, error: remoteError(o) };
    };
    return await schedule(graph, runner, nthreads, retries, opts.onTaskDone);
  } finally {
    await ex.close();
  }
}

const CHILD_URL = new URL("./local-scheduler-child.ts", import.meta.url);

interface ChildSlot {
  proc: ChildProcess;
  ready: Promise<void>;
  running: { id: number; resolve: (o: Outcome) => void } | null;
  exited: boolean;
}

/** A pool of child processes, one task at a time each; a dead child is replaced. */
class ProcessPool {
  readonly #urls: string[];
  readonly #slots: ChildSlot[] = [];
  readonly #idle: ChildSlot[] = [];
  readonly #queue: Array<{ call: ChildCall; resolve: (o: Outcome) => void }> = [];
  #nextId = 1;
  #closed = false;

  constructor(n: number, modules: string[]) {
    this.#urls = modules.map(moduleUrl);
    for (let i = 0; i < n; i++) this.#slots.push(this.#spawn(i));
  }

  /** Resolves when every child loaded its modules; rejects (coded) when one could not. */
  async start(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.ready));
  }

  #spawn(index: number): ChildSlot {
    // execArgv [] : the child must not inherit --test or inspector flags of this process.
    const proc = fork(CHILD_URL, [JSON.stringify(this.#urls), `local-process-${index}`], { serialization: "advanced", execArgv: [], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let settleReady!: (e?: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      settleReady = (e) => (e ? rej(e) : res());
    });
    ready.catch(() => {}); // observed through start()
    const slot: ChildSlot = { proc, ready, running: null, exited: false };
    proc.on("message", (m: ChildReply) => {
      if (m.t === "ready") {
        settleReady();
        this.#idle.push(slot);
        this.#dispatch();
      } else if (m.t === "load-error") {
        settleReady(new DaskError(m.code ?? "DASK_ERR_MODULE_LOAD", m.message));
      } else if (slot.running && slot.running.id === m.id) {
        const r = slot.running;
        slot.running = null;
        r.resolve(m.ok ? { ok: true, value: fromClone(m.value) } : { ok: false, error: remoteError(m) });
        this.#idle.push(slot);
        this.#dispatch();
      }
    });
    proc.on("error", () => {}); // an 'exit' follows; handled there
    // Exit before ready: start() rejects. Exit mid-task: that task fails (coded) and, unless the
    // pool is closing, a fresh child takes the slot, so a retry or the next task has somewhere to run.
    proc.on("exit", (code, signal) => {
      slot.exited = true;
      settleReady(new DaskError("DASK_ERR_CHILD_PROCESS", `local scheduler child ${index} exited (code ${code}, signal ${signal}) before it was ready`));
      const r = slot.running;
      slot.running = null;
      const i = this.#idle.indexOf(slot);
      if (i >= 0) this.#idle.splice(i, 1);
      if (r) r.resolve({ ok: false, error: new DaskError("DASK_ERR_CHILD_PROCESS", `the child process running this task exited (code ${code}, signal ${signal}); it was replaced`) });
      if (!this.#closed && this.#slots[index] === slot) {
        const fresh = this.#spawn(index);
        this.#slots[index] = fresh;
        // A replacement that cannot load fails whatever waits in the queue instead of hanging.
        fresh.ready.catch((e: unknown) => {
          for (const q of this.#queue.splice(0)) q.resolve({ ok: false, error: e });
        });
      }
    });
    return slot;
  }

  run(fn: string, args: unknown[], kwargs: Record<string, unknown>): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const call: ChildCall = { t: "call", id: this.#nextId++, ref: fn, args: toClone(args) as unknown[], kwargs: toClone(kwargs) as Record<string, unknown> };
      this.#queue.push({ call, resolve });
      this.#dispatch();
    });
  }

  /** Idle children take queued calls in order, one each (a child never holds two calls). */
  #dispatch(): void {
    while (this.#queue.length > 0 && this.#idle.length > 0) {
      const slot = this.#idle.shift()!;
      if (slot.exited) continue;
      const q = this.#queue.shift()!;
      slot.running = { id: q.call.id, resolve: q.resolve };
      slot.proc.send(q.call, (err) => {
        // Arguments the IPC serializer refuses (a function): the task fails, the child is fine.
        if (err && slot.running?.id === q.call.id) {
          slot.running = null;
          q.resolve({ ok: false, error: new DaskError("DASK_ERR_TASK_ARGS", `task arguments cannot be sent to a child process: ${err.message}`) });
          this.#idle.push(slot);
          this.#dispatch();
        }
      });
    }
  }

  /** Stops every child and waits for each to exit. */
  async close(): Promise<void> {
    // SIGKILL, not a polite message: a child may be stuck in a task that never returns, and the
    // caller is already settled. Waiting for 'exit' means no child outlives the call.
    this.#closed = true;
    await Promise.all(
      this.#slots.map(
        (s) =>
          new Promise<void>((res) => {
            if (s.exited || s.proc.exitCode !== null || s.proc.signalCode !== null) return res();
            s.proc.once("exit", () => res());
            s.proc.kill("SIGKILL");
          }),
      ),
    );
  }
}

/** The multiprocessing scheduler: `numWorkers` child processes, each importing `modules`. */
export async function getProcesses(graph: LocalGraph, opts: LocalOptions = {}): Promise<Map<string, unknown>> {
  refsOnly(graph, opts, "processes");
  for (const t of graph.tasks.values()) localFunction(t.fn as string);
  const retries = retriesOf(graph, opts);
  // Graph errors surface before any process starts; never more children than tasks to run.
  const n = Math.max(1, Math.min(workersOf(opts), executionOrder(graph).length));
  const pool = new ProcessPool(n, opts.modules ?? []);
  try {
    await pool.start();
    const runner: Runner = (_key, task, args, kwargs) => pool.run(plainRef(task.fn as string), args, kwargs);
    return await schedule(graph, runner, n, retries, opts.onTaskDone);
  } finally {
    await pool.close();
  }
}

/** One of the three by name (what graph.ts compute uses). */
export async function localGet(name: LocalSchedulerName, graph: LocalGraph, opts: LocalOptions = {}): Promise<Map<string, unknown>> {
  if (name === "sync") return await getSync(graph, opts);
  if (name === "threads") return await getThreads(graph, opts);
  if (name === "processes") return await getProcesses(graph, opts);
  throw new ConfigError(`scheduler must be "sync", "threads", "processes" or a Client, got ${JSON.stringify(name)}`);
}
