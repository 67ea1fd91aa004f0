// The graph API: `delayed(fn)(...args)` builds Delayed nodes whose keys are derived from their
// tokens (src/tokens.ts taskKey), so identical nodes share one key and are computed once;
// `compute(...)` and the DaskExecutor-style `run(graph)` hand the graph either to a Client
// (client.submitGraph, C1) or to one of the single-machine schedulers (local-scheduler.ts).
//
// Role: building graphs is pure (no IO, no clock, no randomness; the only state is a counter
// that names JS function objects). compute/run are the edge: they only dispatch to a scheduler
// or a client. Must not: open sockets or threads itself, evaluate a task, or produce a key that
// is not a function of (function, args, kwargs) — except that a JS function object is named by
// its identity within this process (JS functions cannot be tokenized by content: two closures
// with the same source may capture different values), so `delayed(f)(1)` twice with the SAME f
// shares a key, while two distinct function objects never do.
//
// A dependency is a Delayed anywhere inside args/kwargs (arrays, tuples, plain objects, Map
// values, Sets). In the graph it is replaced by its key string, exactly the form the dask wire
// uses (a str equal to a dependency key is substituted by the worker, distributed 2022 pack_data),
// and the local schedulers substitute the same way (run-spec.ts packData), so one GraphSpec means
// the same thing on every scheduler.
import { ConfigError } from "../errors.ts";
import { isTuple, tuple } from "../protocol/values.ts";
import { taskKey } from "../tokens.ts";
import type { GraphSpec } from "./client.ts";
import { executionOrder, localGet } from "./local-scheduler.ts";
import { Progress, progressWanted, track } from "./progress.ts";
import type { ProgressOptions } from "./progress.ts";
import type { LocalOptions, LocalSchedulerName, TaskFunction } from "./local-scheduler.ts";

export type { TaskFunction } from "./local-scheduler.ts";

/** A registered reference ("tasks.js#inc") or, for the sync scheduler only, a JS function. */
export type FunctionLike = string | TaskFunction;

/** One node of a graph: args hold dependency keys as strings; `deps` lists them. */
export interface GraphTask {
  fn: FunctionLike;
  args: unknown[];
  kwargs?: Record<string, unknown>;
  deps: string[];
}

/** A graph any scheduler here accepts (functions may be JS function objects). */
export interface Graph {
  tasks: Map<string, GraphTask>;
  keys: string[];
  resources?: Record<string, number>;
  workers?: string[];
  retries?: number;
  priority?: number;
}

/** The wire-ready form Client.submitGraph takes (registered references only); defined there. */
export type { GraphSpec } from "./client.ts";

/** What compute needs of a future: its value (and, optionally, a way to let the key go). */
export interface FutureLike {
  result(timeoutMs?: number): Promise<unknown>;
  release?(): void;
}

/** What compute needs of a Client (C1's Client satisfies it). */
export interface GraphClient {
  submitGraph(graph: GraphSpec): Map<string, FutureLike>;
}

/** compute/run options. `scheduler` defaults to "sync"; a client may be given either way. */
export interface ComputeOptions extends LocalOptions {
  scheduler?: LocalSchedulerName | GraphClient;
  client?: GraphClient;
  resources?: Record<string, number>;
  workers?: string[];
  priority?: number;
  /**
   * A progress bar over the graph's tasks (local schedulers) or the requested futures (client):
   * true, or cli-progress options; default off unless DASK_WASM_PROGRESS=1 (progress.ts).
   */
  progress?: boolean | ProgressOptions;
}

// JS function objects get a process-local id (see header); a WeakMap so functions can be collected.
const fnIds = new WeakMap<TaskFunction, number>();
let nextFnId = 1;

/** The reference a function contributes to the token: strings as they are, functions by identity. */
function tokenRef(fn: FunctionLike): string {
  if (typeof fn === "string") return fn;
  let id = fnIds.get(fn);
  if (id === undefined) {
    id = nextFnId++;
    fnIds.set(fn, id);
  }
  // taskKey's prefix is the part after the last '#' and '.', so the key reads "<name>-<hex>".
  const name = (fn.name || "fn").replace(/[#.]/g, "_");
  return `local:${id}#${name}`;
}

/** A lazy call; `key` is "<name>-<md5 hex>" of (function, args with dependency keys, kwargs). */
export class Delayed {
  readonly key: string;
  readonly fn: FunctionLike;
  /** Arguments with every nested Delayed replaced by its key string (the wire form). */
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown> | undefined;
  /** The Delayed nodes this one reads, each once, in first-seen order. */
  readonly deps: readonly Delayed[];

  constructor(fn: FunctionLike, args: readonly unknown[], kwargs?: Record<string, unknown>) {
    const found = new Map<string, Delayed>();
    this.fn = fn;
    this.args = args.map((a) => replaceDelayed(a, found, 0));
    this.kwargs = kwargs === undefined ? undefined : (replaceDelayed(kwargs, found, 0) as Record<string, unknown>);
    this.deps = [...found.values()];
    this.key = taskKey(tokenRef(fn), this.args, this.kwargs);
  }

  /** A Delayed tokenizes as its key (src/tokens.ts `__dask_tokenize__`), as a dask Future does. */
  __dask_tokenize__(): string {
    return this.key;
  }

  /** This node and everything it depends on, as one graph whose `keys` is [this.key]. */
  graph(): Graph {
    return toGraph(this);
  }

  /** compute() of this node alone. */
  async compute(opts: ComputeOptions = {}): Promise<unknown> {
    const [v] = await computeList([this], opts);
    return v;
  }
}

export function isDelayed(v: unknown): v is Delayed {
  return v instanceof Delayed;
}

// Deep enough for any honest argument; also bounds the recursion.
const MAX_DEPTH = 1000;

function isPlainObject(v: object): v is Record<string, unknown> {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** Copy of `v` with Delayed nodes replaced by their keys (collected in `found`); others as they are. */
function replaceDelayed(v: unknown, found: Map<string, Delayed>, depth: number): unknown {
  if (v instanceof Delayed) {
    if (!found.has(v.key)) found.set(v.key, v);
    return v.key;
  }
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v)) return v;
  if (depth > MAX_DEPTH) throw new ConfigError(`delayed arguments nested deeper than ${MAX_DEPTH}`);
  if (Array.isArray(v)) {
    const out = v.map((x) => replaceDelayed(x, found, depth + 1));
    return isTuple(v) ? tuple(...out) : out;
  }
  if (v instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, x] of v) out.set(k, replaceDelayed(x, found, depth + 1));
    return out;
  }
  if (v instanceof Set) {
    const out = new Set<unknown>();
    for (const x of v) out.add(replaceDelayed(x, found, depth + 1));
    return out;
  }
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) out[k] = replaceDelayed(v[k], found, depth + 1);
    return out;
  }
  // Class instances (NdArray, Date, …) are values, never containers of nodes.
  return v;
}

/**
 * `delayed(fn)` -> a function building Delayed nodes: `delayed("tasks.js#inc")(1)`.
 * A trailing kwargs object is NOT guessed from the arguments; pass kwargs with `.kw(kwargs, ...args)`.
 */
export function delayed(fn: FunctionLike): ((...args: unknown[]) => Delayed) & { kw(kwargs: Record<string, unknown>, ...args: unknown[]): Delayed } {
  if (typeof fn === "string") {
    if (fn.length === 0) throw new ConfigError("delayed(fn): an empty function reference");
  } else if (typeof fn !== "function") {
    throw new ConfigError(`delayed(fn): fn must be a registered reference ("tasks.js#inc") or a function, got ${fn === null ? "null" : typeof fn}`);
  }
  const make = (...args: unknown[]): Delayed => new Delayed(fn, args);
  return Object.assign(make, { kw: (kwargs: Record<string, unknown>, ...args: unknown[]): Delayed => new Delayed(fn, args, kwargs) });
}

/**
 * One graph for all the nodes reachable from `items`; `keys` are the items' keys in order
 * (duplicates kept, so results line up with the items). Identical nodes — equal keys — become
 * one task, so they are computed once.
 */
export function toGraph(...items: Delayed[]): Graph {
  const tasks = new Map<string, GraphTask>();
  // Iterative DFS: a long chain must not overflow the JS stack.
  const stack: Delayed[] = [...items];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (!(d instanceof Delayed)) throw new ConfigError("toGraph: every item must be a Delayed");
    if (tasks.has(d.key)) continue;
    const t: GraphTask = { fn: d.fn, args: d.args, deps: d.deps.map((x) => x.key) };
    if (d.kwargs !== undefined) t.kwargs = d.kwargs;
    tasks.set(d.key, t);
    for (const dep of d.deps) if (!tasks.has(dep.key)) stack.push(dep);
  }
  return { tasks, keys: items.map((d) => d.key) };
}

/** The graph in wire form; refuses JS function objects (they cannot leave this process). */
export function toGraphSpec(g: Graph): GraphSpec {
  const tasks: GraphSpec["tasks"] = new Map();
  for (const [key, t] of g.tasks) {
    if (typeof t.fn !== "string") {
      throw new ConfigError(`task ${key}: a JS function object runs only with scheduler "sync"; register it in a module and name it ("tasks.js#${t.fn.name || "fn"}")`);
    }
    tasks.set(key, { ...t, fn: t.fn });
  }
  const spec: GraphSpec = { tasks, keys: [...g.keys] };
  if (g.resources !== undefined) spec.resources = g.resources;
  if (g.workers !== undefined) spec.workers = g.workers;
  if (g.retries !== undefined) spec.retries = g.retries;
  if (g.priority !== undefined) spec.priority = g.priority;
  return spec;
}

function clientOf(opts: ComputeOptions): GraphClient | undefined {
  if (opts.client !== undefined) return opts.client;
  const s = opts.scheduler;
  if (s !== undefined && typeof s === "object") return s;
  return undefined;
}

/**
 * DaskExecutor-style `run(graph)`: computes `graph.keys` and returns key -> value.
 * With a client, the futures are released once their values arrived (the graph is not kept
 * on the cluster); a failed task rejects with that task's error.
 */
export async function run(graph: Graph | GraphSpec, opts: ComputeOptions = {}): Promise<Map<string, unknown>> {
  const g: Graph = { ...graph, tasks: graph.tasks as Map<string, GraphTask> };
  if (opts.retries !== undefined) g.retries = opts.retries;
  if (opts.resources !== undefined) g.resources = opts.resources;
  if (opts.workers !== undefined) g.workers = opts.workers;
  if (opts.priority !== undefined) g.priority = opts.priority;
  const client = clientOf(opts);
  if (client) {
    const futures = client.submitGraph(toGraphSpec(g));
    try {
      const out = new Map<string, unknown>();
      const keys = [...new Set(g.keys)];
      // Every future is looked up before any result() starts, so a missing one cannot leave
      // the others' promises unobserved.
      const wanted = keys.map((k) => {
        const f = futures.get(k);
        if (!f) throw new ConfigError(`the client returned no future for key ${k}`);
        return f;
      });
      const values = await track(
        wanted.map((f) => f.result()),
        progressOptions(opts, "compute"),
      );
      keys.forEach((k, i) => out.set(k, values[i]));
      return out;
    } finally {
      for (const f of futures.values()) f.release?.();
    }
  }
  const name = (opts.scheduler ?? "sync") as LocalSchedulerName;
  const localOpts: LocalOptions = { ...opts };
  if (g.retries !== undefined) localOpts.retries = g.retries;
  const popts = progressOptions(opts, `compute (${String(name)})`);
  // The bar counts every task the keys need (culled, as the scheduler runs them).
  const bar = new Progress(progressWanted(popts.enabled) ? executionOrder(g).length : 0, popts);
  if (bar.enabled) localOpts.onTaskDone = () => bar.tick();
  try {
    return await localGet(name, g, localOpts);
  } finally {
    bar.stop();
  }
}

function progressOptions(opts: ComputeOptions, label: string): ProgressOptions {
  const p = opts.progress;
  if (p === undefined) return { label };
  if (typeof p === "boolean") return { enabled: p, label };
  return { label, ...p };
}

async function computeList(items: unknown[], opts: ComputeOptions): Promise<unknown[]> {
  const nodes = items.filter((x): x is Delayed => x instanceof Delayed);
  if (nodes.length === 0) return items;
  const results = await run(toGraph(...nodes), opts);
  // Non-Delayed items pass through unchanged, as in dask.compute.
  return items.map((x) => (x instanceof Delayed ? results.get(x.key) : x));
}

const OPTION_NAMES = new Set(["scheduler", "client", "modules", "functions", "numWorkers", "retries", "onTaskDone", "resources", "workers", "priority", "progress"]);

/** A non-empty plain object whose every field is a ComputeOptions field. */
function isOptions(v: unknown): v is ComputeOptions {
  if (v === null || typeof v !== "object" || !isPlainObject(v)) return false;
  const names = Object.keys(v);
  return names.length > 0 && names.every((n) => OPTION_NAMES.has(n));
}

/**
 * `compute(a, b, {scheduler})` -> [valueOfA, valueOfB] (dask.compute). The last argument is
 * read as options when it is a non-empty plain object whose every field is an option name
 * (anything else is an item and passes through). Shared dependencies of a and b run once.
 */
export async function compute(...items: unknown[]): Promise<unknown[]> {
  const last = items[items.length - 1];
  const opts = isOptions(last) ? (items.pop() as ComputeOptions) : {};
  return await computeList(items, opts);
}
