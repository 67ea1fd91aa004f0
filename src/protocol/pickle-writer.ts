// Pickle WRITER for what a non-Python client sends: plain data, GlobalRef names and task-spec nodes,
// as the REDUCE-only protocol-4 subset (W) of MODERN-DELTA.md §10, and the update-graph expression
// pickle of §9: `Expr._reconstruct(LLGExpr, {key: task, ...}, token, {})`.
//
// Pure: no IO. Must not: emit memo, FRAME, NEWOBJ, BUILD or FROZENSET (the scheduler's unpickler
// does not need them and byte-identity with probe_modern.py's PickleWriter is part of the contract),
// or silently change a value's type: anything outside the subset is a coded PickleError.
//
// Encoding choices are exactly probe_modern.py's (shared/protocol/probes-modern/probe_modern.py
// `PickleWriter.save`), so the two produce identical bytes for the same graph:
//   int: BININT1 for 0..255, BININT for int32, else LONG1 (LONG4 beyond 255 bytes, which the
//        probe cannot write); tuples always MARK ... TUPLE (never TUPLE1-3); lists/dicts
//        EMPTY_LIST/EMPTY_DICT + MARK ... APPENDS/SETITEMS when non-empty.
// JS numbers: a safe integer (except -0) is written as a Python int, anything else as a float.
// JS cannot tell 2 from 2.0, so an integral Python float cannot be expressed: the one lossy corner
// of the mapping (the reader maps both back to the same JS number, so reader(writer(x)) == x).
import { PickleError } from "../errors.ts";
import type { Key } from "./values.ts";
import { isTuple } from "./values.ts";
import { AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode } from "./task-spec.ts";

const TS = "dask._task_spec";
const MAX_DEPTH = 1000;

const encoder = new TextEncoder();

/** Growable output buffer (doubling), little-endian helpers. */
class Out {
  buf = new Uint8Array(256);
  dv = new DataView(this.buf.buffer);
  n = 0;
  ensure(extra: number): void {
    if (this.n + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.n + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.n++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  u32(v: number): void {
    this.ensure(4);
    this.dv.setUint32(this.n, v, true);
    this.n += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.dv.setInt32(this.n, v, true);
    this.n += 4;
  }
  f64be(v: number): void {
    this.ensure(8);
    this.dv.setFloat64(this.n, v, false); // BINFLOAT is big-endian
    this.n += 8;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

function fail(message: string): never {
  throw new PickleError("DASK_ERR_PICKLE_UNSUPPORTED", message);
}

const SURROGATE = /[\ud800-\udfff]/;

/** UTF-8 with Python's "surrogatepass": a lone surrogate is written as its 3-byte form. */
function utf8(s: string): Uint8Array {
  if (!SURROGATE.test(s)) return encoder.encode(s);
  const parts: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      parts.push(...encoder.encode(s.slice(i, i + 2)));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      parts.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    } else {
      parts.push(...encoder.encode(s[i]!));
    }
  }
  return Uint8Array.from(parts);
}

class Writer {
  readonly out = new Out();

  constructor() {
    this.out.byte(0x80); // PROTO 4: >= 4 lets the unpickler resolve dotted names (Expr._reconstruct)
    this.out.byte(4);
  }

  finish(): Uint8Array {
    this.out.byte(0x2e); // STOP
    return this.out.result();
  }

  str(s: string): void {
    // Fast path: short ASCII (keys, module and class names) written in place, no encoder call.
    if (s.length < 256) {
      const o = this.out;
      o.ensure(2 + s.length);
      const start = o.n;
      o.buf[o.n++] = 0x8c; // SHORT_BINUNICODE
      o.buf[o.n++] = s.length;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        o.buf[o.n++] = c;
      }
      if (i === s.length) return;
      o.n = start; // not ASCII: rewind and take the general path
    }
    const b = utf8(s);
    if (b.length < 256) {
      this.out.byte(0x8c); // SHORT_BINUNICODE
      this.out.byte(b.length);
    } else {
      if (b.length > 0xffffffff) fail("str longer than 4 GiB");
      this.out.byte(0x58); // BINUNICODE
      this.out.u32(b.length);
    }
    this.out.bytes(b);
  }

  int(v: bigint): void {
    if (v >= 0n && v < 256n) {
      this.out.byte(0x4b); // BININT1
      this.out.byte(Number(v));
    } else if (v >= -(2n ** 31n) && v < 2n ** 31n) {
      this.out.byte(0x4a); // BININT
      this.out.i32(Number(v));
    } else {
      // Little-endian two's complement in (bit_length + 8) // 8 bytes, as Python's probe writes it.
      // bit_length() of |v|, exactly as probe_modern.py computes it (one byte more than Python's
      // own pickler for -2^(8k-1), which is still a valid LONG1).
      const bits = (v < 0n ? -v : v).toString(2).length;
      const n = Math.floor((bits + 8) / 8);
      if (n < 256) {
        this.out.byte(0x8a); // LONG1
        this.out.byte(n);
      } else {
        this.out.byte(0x8b); // LONG4
        this.out.i32(n);
      }
      let x = BigInt.asUintN(8 * n, v);
      this.out.ensure(n);
      for (let i = 0; i < n; i++) {
        this.out.buf[this.out.n++] = Number(x & 0xffn);
        x >>= 8n;
      }
    }
  }

  global(g: GlobalRef): void {
    this.str(g.module);
    this.str(g.name);
    this.out.byte(0x93); // STACK_GLOBAL
  }

  /** callable(*args) -> <callable> MARK args TUPLE REDUCE (EMPTY_TUPLE when no args). */
  call(module: string, name: string, args: readonly unknown[], depth: number): void {
    this.global(new GlobalRef(module, name));
    this.tuple(args, depth);
    this.out.byte(0x52); // REDUCE
  }

  tuple(items: readonly unknown[], depth: number): void {
    if (items.length === 0) {
      this.out.byte(0x29); // EMPTY_TUPLE
      return;
    }
    this.out.byte(0x28); // MARK
    for (const x of items) this.save(x, depth + 1);
    this.out.byte(0x74); // TUPLE
  }

  dictEntries(entries: Iterable<readonly [unknown, unknown]>, depth: number): void {
    this.out.byte(0x7d); // EMPTY_DICT
    let open = false;
    for (const [k, v] of entries) {
      if (!open) {
        this.out.byte(0x28); // MARK
        open = true;
      }
      this.save(k, depth + 1);
      this.save(v, depth + 1);
    }
    if (open) this.out.byte(0x75); // SETITEMS
  }

  save(v: unknown, depth: number): void {
    if (depth > MAX_DEPTH) fail(`value nested deeper than ${MAX_DEPTH} (or cyclic)`);
    const o = this.out;
    if (v === null || v === undefined) o.byte(0x4e); // NONE
    else if (v === true) o.byte(0x88); // NEWTRUE
    else if (v === false) o.byte(0x89); // NEWFALSE
    else if (typeof v === "number") {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) this.int(BigInt(v));
      else {
        o.byte(0x47); // BINFLOAT
        o.f64be(v);
      }
    } else if (typeof v === "bigint") this.int(v);
    else if (typeof v === "string") this.str(v);
    else if (v instanceof Uint8Array) {
      if (v.length < 256) {
        o.byte(0x43); // SHORT_BINBYTES
        o.byte(v.length);
      } else {
        if (v.length > 0xffffffff) fail("bytes longer than 4 GiB");
        o.byte(0x42); // BINBYTES
        o.u32(v.length);
      }
      o.bytes(v);
    } else if (Array.isArray(v)) {
      if (isTuple(v)) this.tuple(v, depth);
      else {
        o.byte(0x5d); // EMPTY_LIST
        if (v.length > 0) {
          o.byte(0x28); // MARK
          for (const x of v) this.save(x, depth + 1);
          o.byte(0x65); // APPENDS
        }
      }
    } else if (v instanceof Map) this.dictEntries(v, depth);
    else if (v instanceof Set) {
      // No EMPTY_SET/ADDITEMS in subset (W): builtins.set([...]) via REDUCE, as protocol 2 does.
      this.call("builtins", "set", [[...v]], depth);
    } else if (v instanceof GlobalRef) this.global(v);
    else if (v instanceof TaskNode) this.task(v, depth);
    else if (v instanceof TaskRefNode) this.call(TS, "TaskRef", [v.key], depth);
    else if (v instanceof AliasNode) this.call(TS, "Alias", [v.key, v.target], depth);
    else if (v instanceof DataNodeNode) this.call(TS, "DataNode", [v.key, v.value], depth);
    else if (v instanceof ContainerNode) this.container(v, depth);
    else if (isPlainObject(v)) this.dictEntries(Object.entries(v), depth);
    else fail(`cannot pickle ${Object.prototype.toString.call(v)}`);
  }

  task(t: TaskNode, depth: number): void {
    const args = [t.key, t.func, ...t.args];
    // kwargs is typed as a Map; accept a plain object too (untyped callers), never crash on it.
    const raw: unknown = t.kwargs;
    const kwargs = raw instanceof Map ? (raw as Map<string, unknown>) : new Map(Object.entries((raw ?? {}) as object));
    if (kwargs.size === 0) {
      this.call(TS, "Task", args, depth);
      return;
    }
    // REDUCE cannot pass keyword arguments: dask.utils.apply(Task, (key, func, *args), {kw: v}).
    this.global(new GlobalRef("dask.utils", "apply"));
    this.out.byte(0x28); // MARK
    this.global(new GlobalRef(TS, "Task"));
    this.tuple(args, depth + 1);
    this.dictEntries(kwargs, depth + 1);
    this.out.byte(0x74); // TUPLE
    this.out.byte(0x52); // REDUCE
  }

  container(c: ContainerNode, depth: number): void {
    if (c.kind === "dict") {
      if (c.items.length % 2 !== 0) fail("ContainerNode dict needs key/value pairs");
      // Dict({k: v, ...}): the constructor takes one dict (probe_modern.py `Dict(d)`).
      const pairs: Array<[unknown, unknown]> = [];
      for (let i = 0; i < c.items.length; i += 2) pairs.push([c.items[i], c.items[i + 1]]);
      this.global(new GlobalRef(TS, "Dict"));
      this.out.byte(0x28); // MARK
      this.dictEntries(pairs, depth + 1);
      this.out.byte(0x74); // TUPLE
      this.out.byte(0x52); // REDUCE
      return;
    }
    const cls = c.kind === "list" ? "List" : c.kind === "tuple" ? "Tuple" : "Set";
    this.call(TS, cls, c.items, depth);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Pickles plain data, GlobalRefs and task-spec nodes (protocol 4, subset (W)). Values: null/undefined
 * -> None; boolean; number -> int when a safe integer (not -0) else float; bigint -> int; string;
 * Uint8Array -> bytes; tuple()-marked array -> tuple; array -> list; Map or plain object -> dict;
 * Set -> builtins.set([...]); nodes -> REDUCE of their dask._task_spec class.
 */
export function writePickle(value: unknown): Uint8Array {
  const w = new Writer();
  w.save(value, 0);
  return w.finish();
}

export type GraphInput = Map<Key, unknown> | ReadonlyMap<Key, unknown> | Record<string, unknown>;

/**
 * The update-graph `expr_ser` pickle: `Expr._reconstruct(LLGExpr, {key: node, ...}, token, {})`
 * (MODERN-DELTA.md §9). Values are TaskNode (kwargs become dask.utils.apply), AliasNode,
 * DataNodeNode, or any picklable literal. Byte-identical to probe_modern.py's `graph_pickle` for the
 * same graph and token.
 */
export function writeGraphPickle(graph: GraphInput, token: string): Uint8Array {
  const entries: Array<[unknown, unknown]> = graph instanceof Map ? [...graph.entries()] : Object.entries(graph);
  const w = new Writer();
  w.global(new GlobalRef("dask._expr", "Expr._reconstruct"));
  w.out.byte(0x28); // MARK
  w.global(new GlobalRef("dask._expr", "LLGExpr"));
  w.dictEntries(entries, 1);
  w.str(token);
  w.dictEntries([], 1);
  w.out.byte(0x74); // TUPLE
  w.out.byte(0x52); // REDUCE
  return w.finish();
}
