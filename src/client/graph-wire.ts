// Graph encoding for the client's update-graph, one encoder per scheduler dialect
// (DASK-PROTOCOL-2022.12.md §9.2, MODERN-DELTA.md §9 and §11).
//
// Role: PURE functions from "tasks the client wants run" to the stream op the scheduler reads,
// plus the few other ops whose shape differs between dialects (cancel, publish) and the dialect
// choice from a `versions` reply. Must not: do IO, know about Futures (callers turn them into
// keys / TaskRefNodes first), or pick a dialect itself (the client asks the scheduler).
//
// 2022: `update-graph` with plain msgpack `tasks` (the worker's run-spec.ts reads them);
// dependencies are key strings listed separately. 2026: `update-graph` with `expr_ser`, a
// pickle of `Expr._reconstruct(LLGExpr, {key: Task...}, token, {})` that the scheduler
// unpickles; dependencies are TaskRef nodes inside the Task args, so a dependency nested in a
// list/dict must sit in a List/Dict container (Task.__init__ does not search plain ones).
import { ConfigError } from "../errors.ts";
import { writeGraphPickle, writePickle } from "../protocol/pickle-writer.ts";
import { Pickled, Serialized } from "../protocol/serialize.ts";
import { ContainerNode, GlobalRef, TaskNode, TaskRefNode, isGraphNode } from "../protocol/task-spec.ts";
import { isTuple, type Key } from "../protocol/values.ts";

export type Dialect = "2022" | "2026";

/** A stream op or RPC request: always an `op` name plus its fields. */
export type WireOp = { op: string; [field: string]: unknown };

/** One task as the client has it (fn already in wire form, args with dependencies as keys). */
export interface WireTask2022 {
  key: string;
  fn: string;
  args: unknown[];
  kwargs?: Record<string, unknown> | undefined;
  deps: string[];
}

/** Scheduling options shared by every task of one update-graph. */
export interface GraphOptions2022 {
  resources?: Record<string, number> | null;
  workers?: string[];
  allowOtherWorkers?: boolean;
  retries?: number;
  priority?: number;
}

/**
 * The 2022 `update-graph` op (scheduler.py 2022.12 `update_graph(tasks=...)`): plain msgpack
 * tasks, per-key dependencies/restrictions/resources/retries, the client id.
 */
export function encodeGraph2022(tasks: readonly WireTask2022[], want: readonly string[], clientId: string, options: GraphOptions2022 = {}): Record<string, unknown> {
  const wireTasks: Record<string, unknown> = {};
  const dependencies: Record<string, string[]> = {};
  const restrictions: Record<string, string[]> = {};
  const resources: Record<string, Record<string, number>> = {};
  const retries: Record<string, number> = {};
  for (const t of tasks) {
    wireTasks[t.key] = t.kwargs === undefined ? { function: t.fn, args: t.args } : { function: t.fn, args: t.args, kwargs: t.kwargs };
    dependencies[t.key] = t.deps;
    if (options.workers && options.workers.length > 0) restrictions[t.key] = options.workers;
    if (options.resources) resources[t.key] = options.resources;
    if (options.retries) retries[t.key] = options.retries;
  }
  return {
    op: "update-graph",
    tasks: wireTasks,
    keys: [...want],
    dependencies,
    restrictions,
    // Restrictions are all-or-nothing per graph here, so "loose" means every restricted key.
    loose_restrictions: options.allowOtherWorkers ? Object.keys(restrictions) : [],
    resources,
    retries,
    user_priority: options.priority ?? 0,
    fifo_timeout: "100 ms",
    submitting_task: null,
    client: clientId,
  };
}

/** One task for the 2026 encoder: args may hold TaskRefNodes / containers (see lowerArg). */
export interface WireTask2026 {
  key: Key;
  /** An opaque function name (str: non-Python worker) or a GlobalRef to an importable callable. */
  fn: string | GlobalRef;
  args: unknown[];
  kwargs?: Record<string, unknown> | ReadonlyMap<string, unknown> | undefined;
}

export interface GraphOptions2026 {
  /** LLGExpr `_determ_token`; a non-empty token keeps the scheduler from tokenizing the graph. */
  token: string;
  /** {Key: int} priorities, or null: the scheduler runs dask.order (default null). */
  internalPriority?: ReadonlyMap<Key, number> | null;
  /** parse_timedelta input (default "100 ms", as Python's client). */
  fifoTimeout?: string | number;
  /** Graph-wide annotations (plain map; Python sends a ToPickle'd dict). Default {}. */
  annotations?: Record<string, unknown>;
  /**
   * span_metadata. Default {"collections": []} as a plain msgpack map (what the probe sent);
   * a client on a live scheduler passes `toPickle(...)` as Python does (see SPAN_METADATA_2026).
   */
  spanMetadata?: Record<string, unknown> | Pickled;
  submittingTask?: Key | null;
}

/**
 * A task argument in 2026 form: `isRef(v)` gives the key of a dependency (a Future, say) or
 * undefined. Refs become TaskRefNode; an array / tuple / plain object that contains a ref
 * anywhere becomes a List / Tuple / Dict container (so Task.__init__ sees the dependency);
 * one without refs stays a plain literal (the shape Python's parse_input leaves it in).
 */
export function lowerArg(value: unknown, isRef: (v: unknown) => Key | undefined, depth = 0): unknown {
  const key = isRef(value);
  if (key !== undefined) return new TaskRefNode(key);
  if (depth > 64 || isGraphNode(value)) return value;
  if (Array.isArray(value)) {
    const items = value.map((v) => lowerArg(v, isRef, depth + 1));
    if (!items.some(isGraphNode)) return value;
    return new ContainerNode(isTuple(value) ? "tuple" : "list", items);
  }
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const pairs = Object.entries(value).map(([k, v]) => [k, lowerArg(v, isRef, depth + 1)] as const);
    if (!pairs.some(([, v]) => isGraphNode(v))) return value;
    // Dict(dict) pickles with the mapping as its one argument: ContainerNode holds flat pairs.
    return new ContainerNode("dict", pairs.flat());
  }
  return value;
}

/** The Task node for one WireTask2026 (kwargs become dask.utils.apply in the writer). */
export function taskNode2026(t: WireTask2026): TaskNode {
  const kwargs = t.kwargs === undefined ? new Map<string, unknown>() : t.kwargs instanceof Map ? new Map(t.kwargs) : new Map(Object.entries(t.kwargs));
  return new TaskNode(t.key, t.fn, t.args, kwargs);
}

/**
 * The 2026 `update-graph` op (scheduler.py `update_graph`, MODERN-DELTA §9): `expr_ser` is a
 * Serialized {"serializer": "pickle", "writeable": []} around writeGraphPickle; `keys` a plain
 * list; every field the handler requires without default is present (a missing one is a
 * TypeError that closes the client's stream).
 */
export function encodeGraph2026(tasks: readonly WireTask2026[], want: readonly Key[], options: GraphOptions2026): Record<string, unknown> {
  if (typeof options.token !== "string" || options.token.length === 0) throw new ConfigError("encodeGraph2026 needs a non-empty token");
  const graph = new Map<Key, unknown>();
  for (const t of tasks) graph.set(t.key, taskNode2026(t));
  const pickle = writeGraphPickle(graph, options.token);
  const prio = options.internalPriority;
  return {
    op: "update-graph",
    // "writeable": [] is required: 2026 pickle_loads indexes header["writeable"] (MODERN-DELTA §3).
    expr_ser: new Serialized({ serializer: "pickle", writeable: [] }, [pickle]),
    keys: [...want],
    internal_priority: prio === null || prio === undefined ? null : new Map(prio),
    submitting_task: options.submittingTask ?? null,
    fifo_timeout: options.fifoTimeout ?? "100 ms",
    actors: null,
    code: [],
    annotations: options.annotations ?? {},
    span_metadata: options.spanMetadata ?? { collections: [] },
  };
}

/** Python's `ToPickle(value)` in a message: an `__Pickled__` placeholder around our pickle of plain data. */
export function toPickle(value: unknown): Pickled {
  return new Pickled({ "pickled-obj": writePickle(value) }, []);
}

/**
 * span_metadata as the Python client sends it: pickled, so "collections" is a Python list. A
 * plain msgpack map arrives with a tuple there, and the scheduler's Span.add_metadata then fails
 * the SECOND graph of a span with "'tuple' object has no attribute 'extend'" (live, 2026.7.1).
 */
export function spanMetadata2026(): Pickled {
  return toPickle({ collections: [] });
}

/**
 * The scheduler's `restart` RPC. 2026 requires a keyword-only `stimulus_id` (TypeError without
 * it, live 2026.7.1); 2022's signature has no such parameter and rejects it.
 */
export function restartOp(dialect: Dialect, timeoutS: number, waitForWorkers: boolean, stimulusId: string): WireOp {
  const op: WireOp = { op: "restart", timeout: timeoutS, wait_for_workers: waitForWorkers };
  if (dialect === "2026") op["stimulus_id"] = stimulusId;
  return op;
}

/** Cancel: 2022 is the `cancel` RPC, 2026 the `cancel-keys` stream op (all four fields required). */
export function cancelOp2026(keys: readonly Key[], force: boolean, reason = "cancelled by client", msg: string | null = null): Record<string, unknown> {
  return { op: "cancel-keys", keys: [...keys], force, reason, msg };
}

/** 2026 publish: first the stream op, then the RPC carrying the same uid (MODERN-DELTA §11). */
export function publishOps2026(name: string, keys: readonly Key[], data: unknown, override: boolean, clientId: string, uid: string): { flush: WireOp; put: WireOp } {
  return {
    flush: { op: "publish_flush_batched_send", uid },
    put: { op: "publish_put", names: [name], keys: [[...keys]], data: [data], override, client: clientId, uid },
  };
}

/**
 * Dialect from a `versions` RPC reply: packages.distributed >= "2023" speaks 2026 (the year is
 * the calendar-version major; a missing or unreadable version is treated as 2022, the dialect
 * every path of this client was first built and tested against).
 */
export function dialectFromVersions(reply: unknown): Dialect {
  const packages = typeof reply === "object" && reply !== null ? (reply as Record<string, unknown>)["packages"] : undefined;
  const v = typeof packages === "object" && packages !== null ? (packages as Record<string, unknown>)["distributed"] : undefined;
  const year = typeof v === "string" ? Number.parseInt(v, 10) : NaN;
  return Number.isFinite(year) && year >= 2023 ? "2026" : "2022";
}
