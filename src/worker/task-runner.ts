// How one task call runs, on every platform: the registry of allow-listed exports, Wasm modules
// as data (instantiated once per content hash, dropped on a trap), shipped source (only when
// allowed), and the outcome types every executor reports. Node's worker_threads pool
// (executor.ts + thread.ts) and the single-thread InlineExecutor below (browser Web Worker,
// workerd) both call `runTaskCall`, so a task behaves the same wherever it lands.
//
// Platform-neutral: no node:* import, no file system, no threads. IO: none but compiling Wasm
// (WebAssembly.compile) in InlineExecutor. Must not: import a module by name (the registry is
// built by the platform from modules the operator chose), evaluate source unless allowSource,
// or let a task's throw escape as anything but an error outcome.
//
// Wasm ABI (numbers only, for now): the named export is called with the task's remaining
// arguments (numbers, bigints (i64) or booleans); the result is a number, a bigint or undefined.
// Imports: only AssemblyScript's `env.abort` (it traps with the message position); a module that
// imports anything else is refused. A trap drops that instance, so the next call starts fresh.
import { ConfigError, DaskError } from "../errors.ts";
import type { FunctionSpec, TaskCall } from "./run-spec.ts";
import { stringifyKey } from "../protocol/values.ts";

/** "basename#export" -> exported function ("tasks.js#inc"). */
export type Registry = ReadonlyMap<string, (...args: unknown[]) => unknown>;

/**
 * What running a task produced. `start`/`stop` are wall-clock seconds since the epoch (Python
 * `time()`, what task-finished `startstops` carry); `thread` is the pool slot (0..nthreads-1),
 * -1 when the task was refused before reaching a thread.
 */
export type TaskOutcome =
  | { status: "ok"; value: unknown; start: number; stop: number; thread: number }
  | { status: "error"; typeName: string; message: string; stack: string; start: number; stop: number; thread: number; code?: string };

export interface ExecutorStats {
  /** Tasks that reached an outcome, failures included. */
  tasksRun: number;
  /** Of those, status "error". */
  tasksFailed: number;
  /** Distinct Wasm modules compiled by this process. */
  wasmModulesCompiled: number;
  /** Wasm calls that trapped (their instances were dropped). */
  wasmTraps: number;
  /** Threads that died and were replaced (always 0 for the inline executor). */
  threadsReplaced: number;
}

/** What the worker shell needs from an executor (worker_threads pool on Node, inline elsewhere). */
export interface TaskExecutor {
  start(): Promise<void>;
  /** Never rejects: refusals and failures are error outcomes. */
  run(call: TaskCall): Promise<TaskOutcome>;
  close(): Promise<void>;
  readonly stats: ExecutorStats;
  /** Tasks running right now. */
  readonly executing: number;
  /** Asks the executor's threads for a full collection (a no-op where there are none). */
  collectGarbage(): void;
}

/**
 * The stop stamp of a task that started at `start`: now, but at least one microsecond later.
 * Browsers coarsen performance.now() (100 µs without cross-origin isolation) and workerd's clock
 * moves only with IO, so a fast task measures 0 s; a zero compute time becomes the task prefix's
 * duration_average on the scheduler, and dask 2022.12's work stealing then fails an assertion
 * (stealing.py steal_time_ratio: only long-running tasks may have a zero duration) inside the
 * worker's stream handler, which drops that worker.
 */
export function stopAfter(start: number): number {
  return Math.max(nowSeconds(), start + 1e-6);
}

/** Wall-clock seconds since the epoch, as Python's time(). */
export function nowSeconds(): number {
  // workerd reports timeOrigin 0 (its clock only moves with IO): fall back to Date there.
  return performance.timeOrigin > 0 ? (performance.timeOrigin + performance.now()) / 1000 : Date.now() / 1000;
}

export function codedError(code: string, name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  (e as Error & { code: string }).code = code;
  return e;
}

/** An error outcome for a task refused before it ran (thread -1). */
export function refused(code: string, typeName: string, message: string): TaskOutcome {
  const t = nowSeconds();
  return { status: "error", typeName, message, stack: "", start: t, stop: t, thread: -1, code };
}

/**
 * The message of every shipped-source refusal (executor and thread both say the same). It starts
 * with the code because a Python client sees only the exception text, not the outcome's `code`.
 */
export const SOURCE_REFUSAL = "DASK_ERR_SOURCE_NOT_ALLOWED: shipped source runs only on workers started with --allow-source";

/** Looks up "tasks.js#inc"; a missing name is a coded task failure naming what exists. */
export function lookupExport(reg: Registry, ref: string): (...args: unknown[]) => unknown {
  const fn = reg.get(ref);
  if (fn) return fn;
  const known = [...reg.keys()].slice(0, 20).join(", ");
  throw new DaskError("DASK_ERR_UNKNOWN_FUNCTION", `no registered export ${JSON.stringify(ref)} (loaded: ${known || "none; start the worker with --module"})`);
}

/**
 * Indexes already-imported module namespaces ("tasks.js" -> namespace) as a Registry. What a
 * bundle does with the modules the operator allow-listed (the browser page, the workerd entry).
 */
export function registryFromNamespaces(modules: Readonly<Record<string, Record<string, unknown>>>): Registry {
  const reg = new Map<string, (...args: unknown[]) => unknown>();
  for (const [base, ns] of Object.entries(modules)) {
    if (base.includes("#")) throw new ConfigError(`module name ${JSON.stringify(base)} must not contain "#"`);
    for (const [name, value] of Object.entries(ns)) {
      if (typeof value === "function") reg.set(`${base}#${name}`, value as (...args: unknown[]) => unknown);
    }
  }
  return reg;
}

/** Any thrown value -> the error fields of an outcome. `clean` trims runtime-internal stack lines. */
export function errorFields(e: unknown, clean: (stack: string) => string = (s) => s): { typeName: string; message: string; stack: string; code?: string } {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return {
      typeName: e.name || "Error",
      message: e.message,
      stack: typeof e.stack === "string" ? clean(e.stack) : "",
      ...(typeof code === "string" ? { code } : {}),
    };
  }
  // `throw "x"` or `throw 42`: no stack exists; the value's text is the message.
  return { typeName: "Error", message: String(e), stack: "" };
}

/** Wasm instances by module hash for one thread of execution; a trap drops the instance. */
export class WasmInstances {
  readonly #modules = new Map<string, WebAssembly.Module>();
  readonly #instances = new Map<string, WebAssembly.Instance>();

  /** Makes `module` known under `hash` (posted once per thread by the pool; inline: every call). */
  add(hash: string, module: WebAssembly.Module): void {
    this.#modules.set(hash, module);
  }

  call(hash: string, exportName: string, args: readonly unknown[]): unknown {
    const module = this.#modules.get(hash);
    if (!module) throw codedError("DASK_ERR_WASM_MODULE", "Error", `Wasm module ${hash.slice(0, 12)} was never posted to this thread`);
    let inst = this.#instances.get(hash);
    if (!inst) {
      inst = new WebAssembly.Instance(module, wasmImports(module));
      this.#instances.set(hash, inst);
    }
    const fn = inst.exports[exportName];
    if (typeof fn !== "function") throw codedError("DASK_ERR_UNKNOWN_FUNCTION", "TypeError", `the Wasm module has no exported function ${JSON.stringify(exportName)}`);
    const wasmArgs = args.map(toWasmArg);
    try {
      return (fn as (...a: Array<number | bigint>) => unknown)(...wasmArgs);
    } catch (e) {
      // A trapped instance may have left its memory and globals half-updated: never reuse it.
      if (e instanceof WebAssembly.RuntimeError) this.#instances.delete(hash);
      throw e;
    }
  }
}

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

/** Shipped source compiled once per text (bounded), only ever called when allowed. */
export class SourceCache {
  static readonly MAX = 256;
  readonly #fns = new Map<string, (...args: unknown[]) => unknown>();

  get(source: string): (...args: unknown[]) => unknown {
    let fn = this.#fns.get(source);
    if (!fn) {
      // The one place code arrives as text (DESIGN.md "Tasks": --allow-source only).
      const made: unknown = new Function(`return (${source})`)();
      if (typeof made !== "function") throw codedError("DASK_ERR_TASK_SPEC", "TypeError", "shipped source is not a function expression");
      fn = made as (...args: unknown[]) => unknown;
      // Bounded: a client shipping ever-new source must not grow the worker without limit.
      if (this.#fns.size >= SourceCache.MAX) this.#fns.delete(this.#fns.keys().next().value!);
      this.#fns.set(source, fn);
    }
    return fn;
  }
}

/** kwargs are passed as one trailing object, only when there are any (documented in executor.ts). */
function withKwargs(args: unknown[], kwargs: Record<string, unknown>): unknown[] {
  return Object.keys(kwargs).length > 0 ? [...args, kwargs] : args;
}

/** Everything one thread of execution keeps between calls. */
export interface RunContext {
  registry: Registry;
  allowSource: boolean;
  wasm: WasmInstances;
  sources: SourceCache;
}

/**
 * Runs one call whose Wasm module (if any) is already known to `ctx.wasm` under `wasmHash`.
 * `args` exclude the module bytes. Throws what the task throws.
 */
export async function runTaskCall(ctx: RunContext, fn: FunctionSpec, args: unknown[], kwargs: Record<string, unknown>, wasmHash?: string): Promise<unknown> {
  if (fn.kind === "js") return await lookupExport(ctx.registry, fn.ref)(...withKwargs(args, kwargs));
  if (fn.kind === "wasm") {
    if (wasmHash === undefined) throw codedError("DASK_ERR_WASM_MODULE", "TypeError", "a Wasm call without its module");
    return ctx.wasm.call(wasmHash, fn.export, args);
  }
  // The executor refuses first; this is the second lock on the same door.
  if (!ctx.allowSource) throw codedError("DASK_ERR_SOURCE_NOT_ALLOWED", "PermissionError", SOURCE_REFUSAL);
  return await ctx.sources.get(fn.source)(...withKwargs(args, kwargs));
}

/** Hex sha256 of bytes, through WebCrypto (browsers, workerd, Node alike). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/**
 * Compiled modules by content hash. Compilation is async (off the event loop in V8) and
 * concurrent requests for the same bytes share one compile. A failed compile is forgotten, not
 * cached: the entry would only ever hold that error, and the map stays bounded by good modules.
 * `precompiled` modules (workerd: no run-time compile) are served by hash and never compiled;
 * with `compile: false` any other bytes are refused with a coded error.
 */
export class WasmCache {
  #modules = new Map<string, Promise<WebAssembly.Module>>();
  #compiled = 0;
  readonly #hash: (bytes: Uint8Array) => string | Promise<string>;
  readonly #compile: boolean;

  constructor(opts: { hash?: (bytes: Uint8Array) => string | Promise<string>; precompiled?: ReadonlyMap<string, WebAssembly.Module>; compile?: boolean } = {}) {
    this.#hash = opts.hash ?? sha256Hex;
    this.#compile = opts.compile ?? true;
    for (const [hash, module] of opts.precompiled ?? []) this.#modules.set(hash, Promise.resolve(module));
  }

  /** Distinct modules compiled successfully (the `wasm_modules_compiled_total` metric). */
  get compiled(): number {
    return this.#compiled;
  }
  get size(): number {
    return this.#modules.size;
  }

  async get(bytes: Uint8Array): Promise<{ hash: string; module: WebAssembly.Module }> {
    if (!(bytes instanceof Uint8Array)) {
      throw new DaskError("DASK_ERR_WASM_MODULE", "a Wasm task's first argument must be the module bytes");
    }
    const hash = await this.#hash(bytes);
    let p = this.#modules.get(hash);
    if (!p) {
      if (!this.#compile) {
        throw new DaskError("DASK_ERR_WASM_NOT_BUNDLED", `Wasm module ${hash.slice(0, 12)} is not one this runtime was deployed with, and it cannot compile modules at run time`);
      }
      p = WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>).then(
        (m) => {
          this.#compiled++;
          return m;
        },
        (e: unknown) => {
          this.#modules.delete(hash);
          throw new DaskError("DASK_ERR_WASM_MODULE", `the Wasm module does not compile: ${(e as Error).message}`, { cause: e });
        },
      );
      this.#modules.set(hash, p);
    }
    return { hash, module: await p };
  }
}

export interface InlineExecutorOptions {
  /** The allow-listed exports (registryFromNamespaces). */
  registry: Registry;
  /** Run shipped source (off by default; never on in the volunteer page). */
  allowSource?: boolean;
  /** Module cache (workerd passes one with precompiled modules and compile: false). */
  wasmCache?: WasmCache;
}

/**
 * Runs tasks one at a time in the calling thread: the executor of the browser's Web Worker and
 * of workerd, where there are no worker_threads. Tasks queue in arrival order; async tasks do
 * not overlap (one thread of compute, as `--nthreads 1`).
 */
export class InlineExecutor implements TaskExecutor {
  readonly #ctx: RunContext;
  readonly #cache: WasmCache;
  #tail: Promise<unknown> = Promise.resolve();
  #executing = 0;
  #current = "";
  #closed = false;
  #counts = { tasksRun: 0, tasksFailed: 0, wasmTraps: 0, threadsReplaced: 0 };

  constructor(opts: InlineExecutorOptions) {
    this.#ctx = { registry: opts.registry, allowSource: opts.allowSource === true, wasm: new WasmInstances(), sources: new SourceCache() };
    this.#cache = opts.wasmCache ?? new WasmCache();
  }

  get stats(): ExecutorStats {
    return { ...this.#counts, wasmModulesCompiled: this.#cache.compiled };
  }

  get executing(): number {
    return this.#executing;
  }

  /** The key of the task running now ("" when idle), as text (the volunteer page shows it). */
  get current(): string {
    return this.#current;
  }

  async start(): Promise<void> {}

  collectGarbage(): void {}

  run(call: TaskCall): Promise<TaskOutcome> {
    // Chained so that tasks run strictly one after another, as on a 1-thread worker.
    const p = this.#tail.then(() => this.#runOne(call));
    this.#tail = p;
    return p;
  }

  async #runOne(call: TaskCall): Promise<TaskOutcome> {
    if (this.#closed) return this.#finish(refused("DASK_ERR_EXECUTOR_CLOSED", "RuntimeError", "the executor is closed"));
    const fn = call.fn;
    if (fn.kind === "source" && !this.#ctx.allowSource) return this.#finish(refused("DASK_ERR_SOURCE_NOT_ALLOWED", "PermissionError", SOURCE_REFUSAL));
    let args = call.args;
    let hash: string | undefined;
    if (fn.kind === "wasm") {
      try {
        const got = await this.#cache.get(args[0] as Uint8Array);
        hash = got.hash;
        this.#ctx.wasm.add(got.hash, got.module);
      } catch (e) {
        const err = e as DaskError;
        return this.#finish(refused(err.code ?? "DASK_ERR_WASM_MODULE", "TypeError", err.message));
      }
      args = args.slice(1);
    }
    const start = nowSeconds();
    this.#executing++;
    this.#current = stringifyKey(call.key);
    try {
      const value = await runTaskCall(this.#ctx, fn, args, call.kwargs, hash);
      return this.#finish({ status: "ok", value, start, stop: stopAfter(start), thread: 0 });
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError && fn.kind === "wasm") this.#counts.wasmTraps++;
      return this.#finish({ status: "error", ...errorFields(e), start, stop: stopAfter(start), thread: 0 });
    } finally {
      this.#executing--;
      this.#current = "";
    }
  }

  #finish(o: TaskOutcome): TaskOutcome {
    this.#counts.tasksRun++;
    if (o.status === "error") this.#counts.tasksFailed++;
    return o;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
