// The task executor: runs TaskCalls (src/worker/run-spec.ts) in a pool of `nthreads`
// worker_threads (src/worker/thread.ts), so tasks really run in parallel, and reports every
// outcome as data (TaskOutcome), never as a rejection.
//
// IO: threads and module files. Must not: touch the worker state machine, the store or any
// socket (the worker shell feeds outcomes back as events), run more than `nthreads` tasks at a
// time, run shipped source unless `allowSource`, or compile the same Wasm bytes twice.
//
// Calling convention for JS exports and shipped source: `fn(...args)`, plus ONE trailing object
// with the kwargs when the task has any (`fn(...args, kwargs)`). The function may be async.
// Arguments and results cross the thread boundary by structured clone: numbers, strings,
// bigints, booleans, null, Uint8Array/typed arrays, ArrayBuffer, arrays, plain objects, Map and
// Set keep their shape; Python-tuple marks and class identities (NdArray…) do not survive, and a
// result structured clone refuses (a function) fails the task with DataCloneError.
//
// Wasm: `args[0]` is the module's bytes (a dask key fetched like any dependency); they are
// compiled here, in the main thread, once per sha256 (`stats.wasmModulesCompiled`), and the
// WebAssembly.Module is posted to a thread the first time that thread needs it. The ABI (numbers
// in, a number out; `env.abort` the only import) is documented in thread.ts.
//
// Failure policy: a JS throw or a Wasm trap -> status "error" with the JS name, message and
// stack (a trapped instance is dropped by its thread). A thread that dies mid-task (process.exit,
// out of memory, an uncaught async error) is replaced; its task fails with DASK_ERR_THREAD_DIED.
import { fromClone, toClone } from "./clone.ts";
import { Worker } from "node:worker_threads";
import { ConfigError, DaskError } from "../errors.ts";
import { moduleUrl, wasmHash } from "./modules.ts";
import { refused, SOURCE_REFUSAL, WasmCache, type ExecutorStats, type TaskExecutor, type TaskOutcome } from "./task-runner.ts";
import type { TaskCall } from "./run-spec.ts";
import type { ThreadCall, ThreadData, ThreadReply } from "./thread.ts";

export type { FunctionSpec, TaskCall } from "./run-spec.ts";
export { parseComputeTask, parseFunctionRef, functionRef, packData } from "./run-spec.ts";
export type { ExecutorStats, TaskExecutor, TaskOutcome } from "./task-runner.ts";
export { exceptionPickle, exceptionText, tracebackText, pythonExceptionClass } from "./error-pickle.ts";

export interface ExecutorOptions {
  nthreads: number;
  /** --module paths (relative ones resolve against the process cwd) or file URLs; each thread imports all of them. */
  modules: string[];
  allowSource: boolean;
  /** Worker name a task can read as `globalThis.daskWasm.workerName` (examples/tasks.js whoami). */
  name?: string;
}

interface Pending {
  id: number;
  call: ThreadCall;
  resolve: (o: TaskOutcome) => void;
}

/** One pool position; its thread is replaced when it dies, the slot index stays. */
interface Slot {
  index: number;
  worker: Worker;
  ready: boolean;
  /** Load failed: the slot takes no work (only possible for a replacement thread). */
  dead: boolean;
  running: Pending | null;
  /** Wasm hashes whose Module this thread already received. */
  wasmKnown: Set<string>;
  /** The last 'error' event, to explain an exit. */
  lastError: Error | null;
}

const THREAD_URL = new URL("./thread.ts", import.meta.url);

export class Executor implements TaskExecutor {
  readonly #opts: Required<ExecutorOptions>;
  readonly #urls: string[];
  readonly #wasm = new WasmCache({ hash: wasmHash });
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #started: Promise<void> | null = null;
  #closed = false;
  #counts = { tasksRun: 0, tasksFailed: 0, wasmTraps: 0, threadsReplaced: 0 };

  constructor(opts: ExecutorOptions) {
    if (!Number.isSafeInteger(opts.nthreads) || opts.nthreads < 1) throw new ConfigError(`options.nthreads must be an integer >= 1, got ${String(opts.nthreads)}`);
    if (!Array.isArray(opts.modules)) throw new ConfigError("options.modules must be an array of paths");
    this.#opts = { nthreads: opts.nthreads, modules: opts.modules, allowSource: opts.allowSource === true, name: opts.name ?? "" };
    this.#urls = opts.modules.map(moduleUrl);
  }

  get stats(): ExecutorStats {
    return { ...this.#counts, wasmModulesCompiled: this.#wasm.compiled };
  }

  /** Asks every thread for a full garbage collection (after the worker released a lot of memory). */
  collectGarbage(): void {
    for (const slot of this.#slots) if (slot.ready && !slot.dead) slot.worker.postMessage({ t: "gc" });
  }

  /** Tasks running in threads right now (at most nthreads). */
  get executing(): number {
    return this.#slots.filter((s) => s.running).length;
  }

  /** Starts the threads and loads the modules in each; rejects (coded) if a module fails to load. */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (let i = 0; i < this.#opts.nthreads; i++) {
      const { slot, ready } = this.#spawn(i);
      this.#slots.push(slot);
      waits.push(ready);
    }
    try {
      await Promise.all(waits);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** A thread for slot `index`; `ready` settles when its modules are loaded (or failed to). */
  #spawn(index: number): { slot: Slot; ready: Promise<void> } {
    const data: ThreadData = { modules: this.#urls, allowSource: this.#opts.allowSource, workerName: this.#opts.name, thread: index };
    const worker = new Worker(THREAD_URL, { workerData: data });
    const slot: Slot = { index, worker, ready: false, dead: false, running: null, wasmKnown: new Set(), lastError: null };
    let settle!: (e?: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      settle = (e?: Error) => (e ? rej(e) : res());
    });
    worker.on("message", (m: ThreadReply) => {
      if (m.t === "ready") {
        slot.ready = true;
        settle();
        this.#dispatch();
      } else if (m.t === "load-error") {
        slot.dead = true;
        settle(new DaskError(m.code ?? "DASK_ERR_MODULE_LOAD", m.message));
        void worker.terminate();
        this.#failIfNoThreads();
      } else {
        this.#done(slot, m);
      }
    });
    worker.on("error", (e) => {
      slot.lastError = e;
    });
    worker.on("exit", (code) => {
      settle(new DaskError("DASK_ERR_THREAD_DIED", `executor thread ${index} exited (code ${code}) while loading modules${slot.lastError ? `: ${slot.lastError.message}` : ""}`));
      this.#exited(slot, code);
    });
    return { slot, ready };
  }

  /** A thread ended: fail its task, and (unless closing or it never loaded) put a new one in its slot. */
  #exited(slot: Slot, code: number): void {
    if (this.#slots[slot.index] !== slot) return;
    const p = slot.running;
    slot.running = null;
    if (p) {
      const why = slot.lastError ? `: ${slot.lastError.name}: ${slot.lastError.message}` : "";
      const o = refused("DASK_ERR_THREAD_DIED", "RuntimeError", `the executor thread running this task died (exit code ${code})${why}; it was replaced`);
      this.#finish(p, { ...o, thread: slot.index });
    }
    if (this.#closed || slot.dead) return;
    if (!slot.ready) {
      // It died before it could load the modules: a replacement would most likely do the same.
      slot.dead = true;
      this.#failIfNoThreads();
      return;
    }
    this.#counts.threadsReplaced++;
    const { slot: fresh, ready } = this.#spawn(slot.index);
    this.#slots[slot.index] = fresh;
    ready.catch(() => {}); // its failure is handled through `dead` / #failIfNoThreads
  }

  /** With no thread left that can run tasks, queued tasks fail instead of waiting forever. */
  #failIfNoThreads(): void {
    if (this.#slots.length < this.#opts.nthreads) return; // still starting
    if (this.#slots.some((s) => !s.dead)) return;
    for (const p of this.#queue.splice(0)) {
      this.#finish(p, refused("DASK_ERR_THREAD_DIED", "RuntimeError", "no executor thread is alive (module loading failed in replacements)"));
    }
  }

  /**
   * Runs one task. Never rejects: refusals (source not allowed, a Wasm module that does not
   * compile, a closed executor) are error outcomes with `thread: -1`.
   */
  async run(call: TaskCall): Promise<TaskOutcome> {
    if (this.#closed) return refused("DASK_ERR_EXECUTOR_CLOSED", "RuntimeError", "the executor is closed");
    const fn = call.fn;
    if (fn.kind === "source" && !this.#opts.allowSource) {
      return refused("DASK_ERR_SOURCE_NOT_ALLOWED", "PermissionError", SOURCE_REFUSAL);
    }
    let args = call.args;
    let wasm: ThreadCall["wasm"];
    if (fn.kind === "wasm") {
      try {
        const { hash, module } = await this.#wasm.get(args[0] as Uint8Array);
        wasm = { hash, module };
      } catch (e) {
        const err = e as DaskError;
        return refused(err.code ?? "DASK_ERR_WASM_MODULE", "TypeError", err.message);
      }
      args = args.slice(1);
    }
    try {
      await this.start();
    } catch (e) {
      // The pool could not start (a module failed to load): every task fails with that reason.
      const err = e as DaskError;
      return refused(err.code ?? "DASK_ERR_MODULE_LOAD", "RuntimeError", err.message);
    }
    if (this.#closed) return refused("DASK_ERR_EXECUTOR_CLOSED", "RuntimeError", "the executor is closed");
    return new Promise<TaskOutcome>((resolve) => {
      const id = this.#nextId++;
      // NdArrays and tuple marks do not survive structured clone: tag them (clone.ts).
      const tc: ThreadCall = { t: "call", id, fn, args: toClone(args) as unknown[], kwargs: toClone(call.kwargs) as Record<string, unknown> };
      if (wasm) tc.wasm = wasm;
      this.#queue.push({ id, call: tc, resolve });
      this.#dispatch();
      this.#failIfNoThreads();
    });
  }

  /** Free threads take queued tasks in order (at most one each, so at most nthreads run). */
  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (!slot.ready || slot.dead || slot.running) continue;
      const p = this.#queue.shift()!;
      const msg = p.call;
      // Post the Module only the first time this thread needs it (threads cache by hash).
      if (msg.wasm && slot.wasmKnown.has(msg.wasm.hash)) msg.wasm = { hash: msg.wasm.hash };
      try {
        slot.worker.postMessage(msg);
        // Only a posted message delivers the Module: a refused one must not mark it known.
        if (msg.wasm) slot.wasmKnown.add(msg.wasm.hash);
      } catch (e) {
        // Arguments structured clone refuses (a function, a symbol): the task fails, the thread is fine.
        const err = e as Error;
        this.#finish(p, refused("DASK_ERR_TASK_ARGS", err.name || "TypeError", `task arguments cannot be sent to a thread: ${err.message}`));
        continue;
      }
      slot.running = p;
    }
  }

  #done(slot: Slot, m: Extract<ThreadReply, { t: "done" }>): void {
    const p = slot.running;
    if (!p || p.id !== m.id) return; // a reply after the task was already failed (cannot happen; defensive)
    slot.running = null;
    if (m.ok) {
      this.#finish(p, { status: "ok", value: fromClone(m.value), start: m.start, stop: m.stop, thread: slot.index });
    } else {
      if (m.trap) this.#counts.wasmTraps++;
      const o: TaskOutcome = { status: "error", typeName: m.typeName, message: m.message, stack: m.stack, start: m.start, stop: m.stop, thread: slot.index };
      if (m.code !== undefined) o.code = m.code;
      this.#finish(p, o);
    }
    this.#dispatch();
  }

  #finish(p: Pending, o: TaskOutcome): void {
    this.#counts.tasksRun++;
    if (o.status === "error") this.#counts.tasksFailed++;
    p.resolve(o);
  }

  /** Terminates every thread; queued and running tasks end with DASK_ERR_EXECUTOR_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pending = [...this.#queue.splice(0), ...this.#slots.flatMap((s) => (s.running ? [s.running] : []))];
    for (const s of this.#slots) s.running = null;
    for (const p of pending) this.#finish(p, refused("DASK_ERR_EXECUTOR_CLOSED", "RuntimeError", "the executor closed before the task finished"));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
