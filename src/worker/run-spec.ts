// Task spec parsing for the executor: a `compute-task` message (2022 `function`/`args`/`kwargs`
// fields, or a non-map `run_spec`) plus the values of its dependencies -> one TaskCall naming a
// registered JS export, a Wasm export or shipped source, with dependency keys already replaced.
//
// Pure: no IO, no threads, no Wasm, no evaluation. Pickles are read with the data-only reader
// (src/protocol/pickle-reader.ts); nothing a pickle names is ever imported or called here.
// Must not: run anything, or throw anything but a coded DaskError (the worker shell turns every
// throw into task-erred; a Python task that lands here is a task failure, never a crash).
//
// How a task names its function (DESIGN.md "Tasks", python/dask_wasm/__init__.py): the tagged
// str "dask-wasm:js:tasks.js#inc", "dask-wasm:wasm:add" or "dask-wasm:source:<fn.toString()>".
// A Python client pickles `dask_wasm.js(...)` as builtins.str("dask-wasm:js:…") (REDUCE of one
// str), so after readPickle it is exactly that string; a JS client may send the plain string.
//
// Dependency substitution is distributed 2022's `pack_data(args, data, key_types=(bytes, str))`
// (utils_comm.py; worker.py `_prepare_args_for_execution`): a str element equal to a dependency
// key becomes that dependency's value, recursively through tuples/lists (arrays), sets and dict
// values (never dict keys). Dependency keys reach us as keyId strings; 2022 keys are always str,
// and a bytes element never equals a str key in Python, so bytes are left alone.
import { DaskError } from "../errors.ts";
import { readPickle } from "../protocol/pickle-reader.ts";
import { Pickled, pickledBuffers } from "../protocol/serialize.ts";
import { AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode } from "../protocol/task-spec.ts";
import type { Key } from "../protocol/values.ts";
import { isTuple, keyId, tuple } from "../protocol/values.ts";

/** What a task runs. */
export type FunctionSpec =
  | { kind: "js"; ref: string } // "tasks.js#inc": export `inc` of the --module whose basename is tasks.js
  | { kind: "wasm"; export: string } // module bytes = args[0]
  | { kind: "source"; source: string }; // fn.toString(); runs only with allowSource

/** One call for the executor. `args`/`kwargs` have dependencies substituted. */
export interface TaskCall {
  key: Key;
  fn: FunctionSpec;
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** Prefix of every dask-wasm function reference (python/dask_wasm TAG). */
export const TAG = "dask-wasm:";

/**
 * "dask-wasm:js:tasks.js#inc" -> FunctionSpec, or null when `value` is not a dask-wasm reference.
 * An empty ref, or an unknown kind, is null too (the caller reports it as not runnable here).
 */
export function parseFunctionRef(value: unknown): FunctionSpec | null {
  if (typeof value !== "string" || !value.startsWith(TAG)) return null;
  const rest = value.slice(TAG.length);
  const colon = rest.indexOf(":");
  if (colon < 0) return null;
  const kind = rest.slice(0, colon);
  const ref = rest.slice(colon + 1);
  if (ref === "") return null;
  if (kind === "js") return { kind: "js", ref };
  if (kind === "wasm") return { kind: "wasm", export: ref };
  if (kind === "source") return { kind: "source", source: ref };
  return null;
}

/** The tagged string for a FunctionSpec (inverse of parseFunctionRef; JS clients use it). */
export function functionRef(fn: FunctionSpec): string {
  if (fn.kind === "js") return `${TAG}js:${fn.ref}`;
  if (fn.kind === "wasm") return `${TAG}wasm:${fn.export}`;
  return `${TAG}source:${fn.source}`;
}

function taskFail(code: string, message: string, cause?: unknown): never {
  throw new DaskError(code, message, cause === undefined ? undefined : { cause });
}

function keyText(key: Key): string {
  return typeof key === "string" ? key : JSON.stringify(key);
}

/** A pickle is recognised by its PROTO opcode (0x80); anything else in `args` bytes is refused. */
function isPickle(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x80;
}

/** Reads one pickled field; a refused pickle is a task failure with the reader's reason. */
function unpickle(bytes: Uint8Array, field: string, key: Key): unknown {
  try {
    return readPickle(bytes);
  } catch (e) {
    taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: ${field} is a pickle this worker cannot read: ${(e as Error).message}`, e);
  }
}

function notAWasmTask(key: Key, detail: string, cause?: unknown): never {
  taskFail(
    "DASK_ERR_NOT_A_WASM_TASK",
    `task ${keyText(key)} is a Python function (${detail}); route Python tasks to Python workers with resources`,
    cause,
  );
}

/** `function` field -> FunctionSpec: a tagged str, or pickle bytes of one. */
function readFunction(raw: unknown, key: Key): FunctionSpec {
  let value = raw;
  if (raw instanceof Uint8Array) {
    try {
      value = readPickle(raw);
    } catch (e) {
      // Cloudpickled code or a global like operator.add: the reader refuses it, which is the
      // answer: only Python can run it.
      notAWasmTask(key, `its pickle is not a dask-wasm reference: ${(e as Error).message}`, e);
    }
  }
  const fn = parseFunctionRef(value);
  if (fn) return fn;
  if (value instanceof GlobalRef) notAWasmTask(key, value.dotted);
  notAWasmTask(key, typeof value === "string" ? `unknown reference ${JSON.stringify(value.slice(0, 80))}` : `function is a ${describe(value)}`);
}

function describe(v: unknown): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "sequence";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v === "object" ? (v.constructor?.name ?? "object") : typeof v;
}

/** `args` field: pickle bytes of a tuple, or a plain msgpack array; null/absent -> []. */
function readArgs(raw: unknown, key: Key): unknown[] {
  if (raw === null || raw === undefined) return [];
  const v = raw instanceof Uint8Array && isPickle(raw) ? unpickle(raw, "args", key) : raw;
  if (!Array.isArray(v)) taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: args is a ${describe(v)}, not a tuple or list`);
  return v;
}

/** `kwargs` field: pickle bytes of a dict, a plain object or a Map with str keys; null -> {}. */
function readKwargs(raw: unknown, key: Key): Record<string, unknown> {
  if (raw === null || raw === undefined) return {};
  const v = raw instanceof Uint8Array && isPickle(raw) ? unpickle(raw, "kwargs", key) : raw;
  return toRecord(v, key);
}

function toRecord(v: unknown, key: Key): Record<string, unknown> {
  // A plain object with a null prototype would lose nothing, but it is not what a function
  // author expects; own-property assignment with defineProperty keeps "__proto__" a plain key.
  const out: Record<string, unknown> = {};
  const put = (k: string, x: unknown): void => {
    Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
  };
  if (v instanceof Map) {
    for (const [k, x] of v) {
      if (typeof k !== "string") taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: a kwargs key is not a str`);
      put(k, x);
    }
    return out;
  }
  if (isPlainObject(v)) {
    for (const k of Object.keys(v)) put(k, v[k]);
    return out;
  }
  taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: kwargs is a ${describe(v)}, not a dict`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * distributed 2022 `pack_data(o, data, key_types=(bytes, str))` over our value model: str equal
 * to a dependency key -> its value; arrays (tuples keep their mark), Sets, plain-object and Map
 * values are rebuilt with substituted elements; everything else (numbers, bytes, typed arrays,
 * NdArray, dict keys) is returned as it is. Containers are copied, never mutated: the message
 * may be shared (the pickle reader memoises repeated objects).
 */
export function packData(o: unknown, deps: ReadonlyMap<string, unknown>): unknown {
  if (typeof o === "string") return deps.has(o) ? deps.get(o) : o;
  if (o === null || typeof o !== "object") return o;
  if (Array.isArray(o)) {
    const out = o.map((x) => packData(x, deps));
    return isTuple(o) ? markTuple(out) : out;
  }
  if (o instanceof Set) {
    const out = new Set<unknown>();
    for (const x of o) out.add(packData(x, deps));
    return out;
  }
  if (o instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, x] of o) out.set(k, packData(x, deps));
    return out;
  }
  if (isPlainObject(o)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o)) {
      Object.defineProperty(out, k, { value: packData(o[k], deps), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return o;
}

function markTuple(items: unknown[]): unknown[] {
  const t = tuple<unknown>();
  for (const x of items) t.push(x);
  return t;
}

/**
 * 2026 (dask._task_spec) arguments: TaskRef/Alias -> the dependency's value, DataNode -> its
 * value, List/Tuple/Set/Dict containers evaluated, plain values kept. A nested Task (an inline
 * sub-task) would need evaluation on this worker: refused, the graph must make it a key.
 */
function resolveNode(v: unknown, deps: ReadonlyMap<string, unknown>, key: Key): unknown {
  if (v instanceof TaskRefNode || v instanceof AliasNode) {
    const target = v instanceof AliasNode ? v.target : v.key;
    const id = keyId(target);
    if (!deps.has(id)) taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: dependency ${keyText(target)} has no value`);
    return deps.get(id);
  }
  if (v instanceof DataNodeNode) return v.value;
  if (v instanceof TaskNode) taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: inline sub-tasks are not supported by dask-wasm workers`);
  if (v instanceof ContainerNode) {
    const items = v.items.map((x) => resolveNode(x, deps, key));
    if (v.kind === "tuple") return markTuple(items);
    if (v.kind === "set") return new Set(items);
    if (v.kind === "dict") {
      const m = new Map<unknown, unknown>();
      for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]);
      return m;
    }
    return items;
  }
  return v;
}

/** A TaskNode (2026 run_spec) whose func is a dask-wasm reference -> TaskCall. */
function fromTaskNode(node: TaskNode, key: Key, deps: ReadonlyMap<string, unknown>): TaskCall {
  const fn = parseFunctionRef(node.func);
  if (!fn) notAWasmTask(key, node.func instanceof GlobalRef ? node.func.dotted : `func is a ${describe(node.func)}`);
  const args = node.args.map((a) => resolveNode(a, deps, key));
  const kw = new Map<string, unknown>();
  for (const [k, x] of node.kwargs) kw.set(k, resolveNode(x, deps, key));
  return { key, fn, args, kwargs: toRecord(kw, key) };
}

/**
 * A non-map `run_spec` (protocol §8.1): 2022 passes it to `execute_task`, which calls a task
 * tuple `(func, *args)`. We accept that tuple form when `func` is a dask-wasm reference (after
 * pack_data, as 2022 does on `(task,)`), and a 2026 Task. Any other value is refused: a Python
 * worker would return a literal as the result, but a dask-wasm worker only runs named functions.
 */
function fromRunSpec(raw: unknown, key: Key, deps: ReadonlyMap<string, unknown>): TaskCall {
  const { bytes, buffers } = raw instanceof Pickled ? pickledBytes(raw, key) : { bytes: raw, buffers: [] };
  const v = bytes instanceof Uint8Array && isPickle(bytes) ? unpickleRunSpec(bytes, key, buffers) : bytes;
  if (v instanceof TaskNode) return fromTaskNode(v, key, deps);
  if (Array.isArray(v) && v.length >= 1) {
    const head = v[0] instanceof Uint8Array && isPickle(v[0]) ? unpickleRunSpec(v[0], key) : v[0];
    const fn = parseFunctionRef(head);
    if (fn) return { key, fn, args: (packData(v.slice(1), deps) as unknown[]), kwargs: {} };
  }
  notAWasmTask(key, `run_spec is a ${describe(v)}, not a dask-wasm task tuple`);
}

/**
 * A 2026 scheduler sends run_spec as `ToPickle(task)`, which the shell's loads (deserialize:
 * false) keeps as a Pickled wrapper: its "pickled-obj" is the pickle, its sub-frames the
 * out-of-band buffers (protocol 5: a numpy argument's data) its NEXT_BUFFER opcodes read.
 */
function pickledBytes(p: Pickled, key: Key): { bytes: Uint8Array; buffers: Uint8Array[] } {
  const obj = p.header["pickled-obj"];
  if (!(obj instanceof Uint8Array)) taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: run_spec __Pickled__ header has no pickled-obj bytes`);
  try {
    return { bytes: obj, buffers: pickledBuffers(p) };
  } catch (e) {
    taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)}: run_spec buffers unreadable: ${(e as Error).message}`, e);
  }
}

function unpickleRunSpec(bytes: Uint8Array, key: Key, buffers: readonly Uint8Array[] = []): unknown {
  try {
    return readPickle(bytes, { buffers });
  } catch (e) {
    notAWasmTask(key, `its run_spec pickle is not a dask-wasm task: ${(e as Error).message}`, e);
  }
}

/**
 * compute-task message + dependency values (keyed by keyId) -> TaskCall. Throws a coded
 * DaskError: DASK_ERR_NOT_A_WASM_TASK for Python tasks, DASK_ERR_TASK_SPEC for malformed fields.
 */
export function parseComputeTask(msg: Record<string, unknown>, deps: ReadonlyMap<string, unknown>): TaskCall {
  const key = msg.key as Key;
  if (key === undefined || key === null) taskFail("DASK_ERR_TASK_SPEC", "compute-task without a key");
  const hasFunction = msg.function !== undefined && msg.function !== null;
  if (!hasFunction) {
    const rs = msg.run_spec;
    if (rs === undefined || rs === null) taskFail("DASK_ERR_TASK_SPEC", `task ${keyText(key)} has neither function nor run_spec`);
    return fromRunSpec(rs, key, deps);
  }
  const fn = readFunction(msg.function, key);
  const args = packData(readArgs(msg.args, key), deps) as unknown[];
  const kwargs = packData(readKwargs(msg.kwargs, key), deps) as Record<string, unknown>;
  return { key, fn, args, kwargs };
}
