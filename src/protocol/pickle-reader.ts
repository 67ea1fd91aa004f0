// Pickle READER: a data-only pickle VM. It never imports or executes anything: globals become
// `GlobalRef` names, REDUCE/NEWOBJ/BUILD of allow-listed dask/numpy/builtins classes become typed
// values (task-spec.ts, NdArray), everything else is refused with a coded PickleError.
//
// Pure: no IO, no Wasm (pickles are small and cold next to msgpack; a JS VM is enough).
// Must not: call anything named by a pickle, allocate more than a small multiple of its input,
// recurse without a depth bound, or throw anything but PickleError on bad input.
//
// Opcode subset: MODERN-DELTA.md §10 (R) plus the robustness extras (BINUNICODE8, BINBYTES8,
// BYTEARRAY8, LONG4, NEXT_BUFFER, READONLY_BUFFER), plus what Python's C pickler emits at protocols
// 2-4 for exception pickles (DASK-PROTOCOL-2022.12.md §10.1: GLOBAL 'c', BINPUT/LONG_BINPUT, POP,
// DUP, ...). Text-mode opcodes of protocol 0/1 (INT, STRING, PUT, ...) are not read.
//
// Allow-list rule (decided here, documented for the worker):
//   * REDUCE / NEWOBJ may call only: dask._task_spec.{Task, TaskRef, Alias, DataNode, List, Tuple,
//     Set, Dict}, dask.utils.apply (only as apply(Task, args, kwargs)), builtins.{list, tuple, set,
//     frozenset, dict, bytearray, str of one str}, numpy.dtype and numpy.{core,_core}.numeric._frombuffer.
//   * A global that is not called may appear as a value only if it is on that list, or on the
//     structural list (dask._task_spec.NestedContainer.to_container, Dict.constructor), or if it is
//     the `func` of a Task: that is how a user function travels (kept as a GlobalRef; the worker
//     maps names through its registry and fails the task for unknown ones).
//   * With `opaqueGlobals: true` (for displaying exceptions and tests on scheduler-bound pickles)
//     any other REDUCE/NEWOBJ becomes an `OpaqueObject {global, args, state}` record instead.
import { PickleError } from "../errors.ts";
import type { Key } from "./values.ts";
import { isKey, isTuple, tuple, pyStrRepr } from "./values.ts";
import { NdArray, deserializeNumpy, parseDtype } from "./numpy.ts";
import type { NumericArray } from "./numpy.ts";
import { AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode } from "./task-spec.ts";
import type { ContainerKind } from "./task-spec.ts";

export interface PickleReadOptions {
  /** Out-of-band buffers for NEXT_BUFFER, in order (the frames after the pickle's own frame). Used as-is, not copied. */
  buffers?: readonly Uint8Array[];
  /** Refuse inputs longer than this (default 256 MiB). */
  maxBytes?: number;
  /** Maximum nesting of containers/objects in the result (default 1000). */
  maxDepth?: number;
  /** Maximum memo entries (default 1,000,000). */
  maxMemo?: number;
  /** Unknown globals called by REDUCE/NEWOBJ become OpaqueObject records instead of an error. */
  opaqueGlobals?: boolean;
}

/** An object of a class the reader does not know (only with `opaqueGlobals`). Nothing was executed. */
export class OpaqueObject {
  readonly kind = "opaque" as const;
  readonly global: string;
  readonly args: unknown;
  readonly state: unknown;
  constructor(global: string, args: unknown, state: unknown) {
    this.global = global;
    this.args = args;
    this.state = state;
  }
}

// ---------------------------------------------------------------------------------------------
// Internal VM values. They exist only while a pickle is being read; `finalize` turns them into
// the public representation (so that a memoised dict can still receive SETITEMs after it was
// referenced, as Python allows).

/**
 * Python list under construction. Inside the VM a Python tuple is a bare JS array and a list is
 * this wrapper, so that no tuple needs the (slow) tuple() mark until it reaches the output.
 */
class PyList {
  items: unknown[];
  constructor(items: unknown[] = []) {
    this.items = items;
  }
}

/**
 * Python's key equality for dict keys and set items (1 == 1.0 == True, equal tuples), in O(1)
 * per lookup however large or often repeated the key: primitives are JS Map keys (V8 caches a
 * string's hash, so a memoised 1 MB key repeated a million times is not rehashed); small bytes
 * and tuples get a bounded encoded form; anything else (or bigger) is compared by identity.
 */
class KeyIndex {
  readonly prim = new Map<unknown, number>();
  readonly comp = new Map<string, number>();
  /** The index stored for a key equal to `k`; otherwise stores `next` for it and returns -1. */
  find(k: unknown, next: number): number {
    let map: Map<unknown, number>;
    let h: unknown;
    if (typeof k === "boolean") (map = this.prim), (h = k ? 1 : 0);
    else if (typeof k === "number") (map = this.prim), (h = k === 0 ? 0 : k); // -0.0 == 0
    else if (k === null || typeof k === "string" || typeof k === "bigint") (map = this.prim), (h = k);
    else {
      const c = compositeHash(k, 0);
      if (c === null) return -1; // identity only: never equal to another key
      (map = this.comp as Map<unknown, number>), (h = c);
    }
    const at = map.get(h);
    if (at !== undefined) return at;
    map.set(h, next);
    return -1;
  }
}

/** Bounded encoding of a small immutable bytes or tuple key; null when too big or unhashable. */
function compositeHash(k: unknown, depth: number): string | null {
  if (k instanceof Uint8Array) return !(k as { mutable?: boolean }).mutable && k.length <= 64 ? "b" + latin1(k) : null;
  if (!Array.isArray(k) || depth > 8) return null; // a VM tuple, or not hashable here
  const cached = TUPLE_HASH.get(k);
  if (cached !== undefined) return cached;
  let h: string | null = "t";
  for (const x of k) {
    const part =
      typeof x === "string" ? (x.length <= 64 ? JSON.stringify(x) : null)
      : typeof x === "number" ? (Number.isInteger(x) && Math.abs(x) < 2 ** 64 ? "n" + BigInt(x) : "f" + x)
      : typeof x === "bigint" ? (x < 2n ** 64n && x > -(2n ** 64n) ? "n" + x : null)
      : typeof x === "boolean" ? (x ? "n1" : "n0")
      : x === null ? "N"
      : compositeHash(x, depth + 1);
    if (part === null || h.length + part.length > 512) {
      h = null;
      break;
    }
    h += part + ",";
  }
  // Cached per tuple object: a memoised tuple used as a key many times is encoded once.
  TUPLE_HASH.set(k, h);
  return h;
}
const TUPLE_HASH = new WeakMap<object, string | null>();

/** Python dict under construction (insertion order; a repeated key keeps its first position). */
class PyDict {
  keys: unknown[] = [];
  values: unknown[] = [];
  index = new KeyIndex();
  set(k: unknown, v: unknown): void {
    const at = this.index.find(k, this.keys.length);
    if (at >= 0) {
      this.values[at] = v;
      return;
    }
    this.keys.push(k);
    this.values.push(v);
  }
}

/** Python set/frozenset under construction. */
class PySet {
  items: unknown[] = [];
  index = new KeyIndex();
  frozen: boolean;
  constructor(frozen: boolean) {
    this.frozen = frozen;
  }
  add(v: unknown): void {
    if (this.index.find(v, this.items.length) < 0) this.items.push(v);
  }
}

/** The result of REDUCE(cls, args) or NEWOBJ(cls, args), optionally BUILD(state). */
class PyObj {
  cls: GlobalRef;
  args: unknown;
  state: unknown = undefined;
  hasState = false;
  via: "reduce" | "newobj";
  constructor(cls: GlobalRef, args: unknown, via: "reduce" | "newobj") {
    this.cls = cls;
    this.args = args;
    this.via = via;
  }
}

/** Stands for "the result of a call" when a pickle calls a non-global (opaque mode only). */
const DYNAMIC = new GlobalRef("<call>", "result");

/** A numpy.dtype built by REDUCE(numpy.dtype, (str, False, True)) + BUILD(state). */
class PyDtype {
  spec: string;
  byteorder = "=";
  refused: string | null = null;
  constructor(spec: string) {
    this.spec = spec;
  }
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 1000;
const DEFAULT_MAX_MEMO = 1_000_000;
/** Python ints longer than this many bytes are refused (BigInt parsing is superlinear). */
const MAX_LONG_BYTES = 4096;

const TS = "dask._task_spec";
const TASK_SLOTS = 9; // _data_producer, _dependencies, _is_coro, _repr, _token, args, func, key, kwargs
const CONTAINER_SLOTS = 11; // + constructor, klass
// Positions inside the sorted slot tuples (GraphNode.get_all_slots(): sorted names).
const TASK_ARGS = 5, TASK_FUNC = 6, TASK_KEY = 7, TASK_KWARGS = 8;
const CONTAINER_ARGS = 5;

const CONTAINER_CLASSES: Record<string, ContainerKind> = { List: "list", Tuple: "tuple", Set: "set", Dict: "dict" };

/** Globals REDUCE/NEWOBJ may call (see the header for the rule). */
const CALLABLE = new Set([
  `${TS}.Task`, `${TS}.TaskRef`, `${TS}.Alias`, `${TS}.DataNode`,
  `${TS}.List`, `${TS}.Tuple`, `${TS}.Set`, `${TS}.Dict`,
  "dask.utils.apply",
  "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset", "builtins.dict", "builtins.bytearray",
  // str(one str): how python/dask_wasm references pickle ("dask-wasm:js:tasks.js#inc"); protocol 2
  // spells it __builtin__.unicode (pickle's _compat_pickle NAME_MAPPING).
  "builtins.str", "builtins.unicode",
  "numpy.dtype", "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
]);
/** Globals that may appear as plain values anywhere (container constructor/klass/func slots, typ=list). */
const VALUE_GLOBALS = new Set([
  ...CALLABLE,
  `${TS}.NestedContainer.to_container`, `${TS}.Dict.constructor`,
]);

/** Python 2 module names that protocol-2 pickles use (pickle's _compat_pickle, the part we need). */
const COMPAT_MODULES: Record<string, string> = { __builtin__: "builtins", exceptions: "builtins", copy_reg: "copyreg" };

const utf8 = new TextDecoder("utf-8", { fatal: true });

function fail(code: string, message: string): never {
  throw new PickleError(code, message);
}

/**
 * Reads one pickle and returns its value: None -> null, bool, int ->
 * number (bigint beyond 2^53), float -> number, str -> string, bytes/bytearray -> Uint8Array,
 * list -> Array, tuple -> tuple()-marked Array, dict -> plain object when every key is a str,
 * else Map; set/frozenset -> Set; numpy _frombuffer -> as numpy.ts (1-D native dtype -> typed
 * array, else NdArray); dask._task_spec -> task-spec nodes; called unknown globals -> coded error
 * (or OpaqueObject with `opaqueGlobals`).
 * Objects the pickle references more than once (memo) are the same JS object in the result, and
 * numpy data may share memory with the input copy or an out-of-band buffer: treat as read-only.
 * Throws only PickleError (codes DASK_ERR_PICKLE_*).
 */
export function readPickle(bytes: Uint8Array, options: PickleReadOptions = {}): unknown {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) fail("DASK_ERR_PICKLE_LIMIT", `pickle of ${bytes.length} bytes exceeds maxBytes ${maxBytes}`);
  const vm = new Vm(bytes, options);
  const raw = vm.run();
  try {
    return new Finalizer(options, vm).value(raw, 0, false);
  } catch (e) {
    // Only reachable when a caller raises maxDepth beyond what the JS stack holds.
    if (e instanceof RangeError) fail("DASK_ERR_PICKLE_DEPTH", "pickle nested deeper than the JS stack allows");
    throw e;
  }
}

class Vm {
  readonly d: Uint8Array;
  readonly dv: DataView;
  p = 0;
  readonly stack: unknown[] = [];
  /** Stack heights at each open MARK (Python's metastack). */
  readonly marks: number[] = [];
  /** Memo slots (sparse for BINPUT/LONG_BINPUT); `memoCount` distinct entries, Python's len(memo). */
  readonly memo: unknown[] = [];
  memoCount = 0;
  readonly buffers: readonly Uint8Array[];
  nextBuffer = 0;
  readonly opaque: boolean;
  readonly maxMemo: number;
  /**
   * What we may still copy (bytes) or materialise again (elements of shared tuples/dicts): bounds
   * the total allocation to a small multiple of the input whatever the memo sharing.
   */
  budget: number;

  constructor(bytes: Uint8Array, options: PickleReadOptions) {
    this.d = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffers = options.buffers ?? [];
    this.opaque = options.opaqueGlobals === true;
    this.maxMemo = options.maxMemo ?? DEFAULT_MAX_MEMO;
    let oob = 0;
    for (const b of this.buffers) oob += b.length;
    this.budget = 4 * (bytes.length + oob) + 65536;
  }

  charge(n: number): void {
    this.budget -= n;
    if (this.budget < 0) fail("DASK_ERR_PICKLE_LIMIT", "pickle expands to more than 4x its size (repeated references to shared buffers, tuples or dicts)");
  }

  need(n: number): void {
    // Checked before any allocation, so a huge declared length costs nothing.
    if (n > this.d.length - this.p) fail("DASK_ERR_PICKLE_TRUNCATED", `pickle truncated: need ${n} bytes at offset ${this.p}, have ${this.d.length - this.p}`);
  }
  u8(): number {
    this.need(1);
    return this.d[this.p++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.p, true);
    this.p += 2;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.dv.getInt32(this.p, true);
    this.p += 4;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.p, true);
    this.p += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.p, true);
    this.p += 8;
    // Anything above the input length is truncation anyway; clamp so callers compare numbers.
    return v > BigInt(this.d.length) ? this.d.length + 1 : Number(v);
  }
  take(n: number): Uint8Array {
    this.need(n);
    const b = this.d.subarray(this.p, this.p + n);
    this.p += n;
    return b;
  }
  str(n: number): string {
    const b = this.take(n);
    // Short ASCII strings (keys, module names) are the common case: skip TextDecoder.
    if (n <= 32) {
      let s = "";
      for (let i = 0; i < n; i++) {
        const c = b[i]!;
        if (c >= 0x80) return decodeUtf8(b, this.p - n);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return decodeUtf8(b, this.p - n);
  }
  line(): string {
    // GLOBAL's "module\nname\n" arguments; bounded by the input.
    const start = this.p;
    const end = this.d.indexOf(0x0a, start);
    if (end < 0) fail("DASK_ERR_PICKLE_TRUNCATED", `pickle truncated: no newline after offset ${start}`);
    this.p = end + 1;
    return decodeUtf8(this.d.subarray(start, end), start);
  }

  push(v: unknown): void {
    this.stack.push(v);
  }
  pop(op: number): unknown {
    const base = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
    if (this.stack.length <= base) fail("DASK_ERR_PICKLE_STACK", `stack underflow at opcode 0x${hex(op)} (offset ${this.p - 1})`);
    return this.stack.pop();
  }
  top(op: number): unknown {
    const base = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
    if (this.stack.length <= base) fail("DASK_ERR_PICKLE_STACK", `stack underflow at opcode 0x${hex(op)} (offset ${this.p - 1})`);
    return this.stack[this.stack.length - 1];
  }
  popMark(op: number): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) fail("DASK_ERR_PICKLE_STACK", `opcode 0x${hex(op)} without MARK (offset ${this.p - 1})`);
    return this.stack.splice(m);
  }
  memoPut(i: number, op: number): void {
    const v = this.top(op);
    if (this.memo[i] === undefined) {
      if (this.memoCount >= this.maxMemo) fail("DASK_ERR_PICKLE_LIMIT", `more than maxMemo ${this.maxMemo} memo entries`);
      this.memoCount++;
    }
    this.memo[i] = v; // never undefined: VM values are null for None
  }
  memoGet(i: number): void {
    const v = this.memo[i];
    if (v === undefined) fail("DASK_ERR_PICKLE_MEMO", `memo entry ${i} missing (offset ${this.p})`);
    this.push(v);
  }
  global(module: string, name: string): GlobalRef {
    return new GlobalRef(COMPAT_MODULES[module] ?? module, name);
  }

  run(): unknown {
    for (;;) {
      if (this.p >= this.d.length) fail("DASK_ERR_PICKLE_TRUNCATED", `pickle truncated: no STOP before offset ${this.p}`);
      const at = this.p;
      const op = this.d[this.p++]!;
      switch (op) {
        // ---- framing
        case 0x80: { // PROTO
          const v = this.u8();
          if (v > 5) fail("DASK_ERR_PICKLE_PROTOCOL", `unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: this.u64(); break; // FRAME: a length hint for buffered readers; we have it all
        case 0x2e: { // STOP
          if (this.marks.length > 0) fail("DASK_ERR_PICKLE_STACK", `STOP inside an open MARK (offset ${at})`);
          return this.pop(op);
        }
        case 0x28: this.marks.push(this.stack.length); break; // MARK
        case 0x30: this.pop(op); break; // POP
        case 0x31: this.popMark(op); break; // POP_MARK
        case 0x32: this.push(this.top(op)); break; // DUP
        // ---- memo
        case 0x94: this.memoPut(this.memoCount, op); break; // MEMOIZE
        case 0x71: this.memoPut(this.u8(), op); break; // BINPUT
        case 0x72: this.memoPut(this.u32(), op); break; // LONG_BINPUT
        case 0x68: this.memoGet(this.u8()); break; // BINGET
        case 0x6a: this.memoGet(this.u32()); break; // LONG_BINGET
        // ---- atoms
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.u16()); break; // BININT2
        case 0x4a: this.push(this.i32()); break; // BININT
        case 0x8a: this.push(this.long(this.u8(), at)); break; // LONG1
        case 0x8b: { // LONG4
          const n = this.i32();
          if (n < 0) fail("DASK_ERR_PICKLE_INVALID", `LONG4 with negative length at offset ${at}`);
          this.push(this.long(n, at));
          break;
        }
        case 0x47: { // BINFLOAT: big-endian double (pickle's one big-endian field)
          this.need(8);
          this.push(this.dv.getFloat64(this.p, false));
          this.p += 8;
          break;
        }
        case 0x8c: this.push(this.str(this.u8())); break; // SHORT_BINUNICODE
        case 0x58: this.push(this.str(this.u32())); break; // BINUNICODE
        case 0x8d: this.push(this.str(this.u64())); break; // BINUNICODE8
        case 0x43: this.push(this.bytes(this.u8())); break; // SHORT_BINBYTES
        case 0x42: this.push(this.bytes(this.u32())); break; // BINBYTES
        case 0x8e: this.push(this.bytes(this.u64())); break; // BINBYTES8
        case 0x96: { // BYTEARRAY8: mutable, so never a dict/set key
          const b = this.bytes(this.u64());
          Object.defineProperty(b, "mutable", { value: true });
          this.push(b);
          break;
        }
        case 0x97: { // NEXT_BUFFER: the next out-of-band frame (protocol 5)
          const b = this.buffers[this.nextBuffer];
          if (b === undefined) fail("DASK_ERR_PICKLE_BUFFER", `NEXT_BUFFER at offset ${at} but only ${this.buffers.length} out-of-band buffer(s) were given`);
          this.nextBuffer++;
          this.push(b);
          break;
        }
        case 0x98: this.top(op); break; // READONLY_BUFFER: a flag on the top buffer; nothing to do
        // ---- containers
        case 0x29: this.push([]); break; // EMPTY_TUPLE
        case 0x85: { const a = this.pop(op); this.push([a]); break; } // TUPLE1
        case 0x86: { const b = this.pop(op); const a = this.pop(op); this.push([a, b]); break; } // TUPLE2
        case 0x87: { // TUPLE3
          const c = this.pop(op); const b = this.pop(op); const a = this.pop(op);
          this.push([a, b, c]);
          break;
        }
        case 0x74: this.push(this.popMark(op)); break; // TUPLE
        case 0x5d: this.push(new PyList()); break; // EMPTY_LIST
        case 0x6c: this.push(new PyList(this.popMark(op))); break; // LIST
        case 0x61: { // APPEND
          const v = this.pop(op);
          this.list(op).push(v);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark(op);
          const l = this.list(op);
          for (const x of items) l.push(x);
          break;
        }
        case 0x7d: this.push(new PyDict()); break; // EMPTY_DICT
        case 0x64: { // DICT
          const items = this.popMark(op);
          const dict = new PyDict();
          if (items.length % 2 !== 0) fail("DASK_ERR_PICKLE_INVALID", `DICT with an odd number of items at offset ${at}`);
          for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
          this.push(dict);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.pop(op);
          const k = this.pop(op);
          this.dict(op).set(k, v);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark(op);
          if (items.length % 2 !== 0) fail("DASK_ERR_PICKLE_INVALID", `SETITEMS with an odd number of items at offset ${at}`);
          const dict = this.dict(op);
          for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
          break;
        }
        case 0x8f: this.push(new PySet(false)); break; // EMPTY_SET
        case 0x90: { // ADDITEMS
          const items = this.popMark(op);
          const s = this.top(op);
          if (!(s instanceof PySet) || s.frozen) fail("DASK_ERR_PICKLE_INVALID", `ADDITEMS on a non-set at offset ${at}`);
          for (const x of items) s.add(x);
          break;
        }
        case 0x91: { // FROZENSET
          const s = new PySet(true);
          for (const x of this.popMark(op)) s.add(x);
          this.push(s);
          break;
        }
        // ---- globals and objects (kept symbolic, never imported)
        case 0x93: { // STACK_GLOBAL
          const name = this.pop(op);
          const module = this.pop(op);
          if (typeof module !== "string" || typeof name !== "string") fail("DASK_ERR_PICKLE_INVALID", `STACK_GLOBAL on non-strings at offset ${at}`);
          this.push(this.global(module, name));
          break;
        }
        case 0x63: { // GLOBAL "module\nname\n" (protocols 0-3; Python's exception pickles)
          const module = this.line();
          const name = this.line();
          this.push(this.global(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop(op);
          const callable = this.pop(op);
          this.push(this.call(callable, args, "reduce", at));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop(op);
          const cls = this.pop(op);
          this.push(this.call(cls, args, "newobj", at));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop(op);
          const obj = this.top(op);
          if (obj instanceof PyDtype) this.dtypeState(obj, state);
          else if (obj instanceof PyObj && (!obj.hasState || this.opaque)) {
            obj.state = state;
            obj.hasState = true;
          } else if (!this.opaque) fail("DASK_ERR_PICKLE_STATE", `BUILD on a value that takes no state at offset ${at}`);
          break;
        }
        default:
          fail("DASK_ERR_PICKLE_OPCODE", `unknown opcode 0x${hex(op)} at offset ${at}`);
      }
    }
  }

  long(n: number, at: number): number | bigint {
    if (n > MAX_LONG_BYTES) fail("DASK_ERR_PICKLE_LIMIT", `int of ${n} bytes at offset ${at} is larger than ${MAX_LONG_BYTES}`);
    const b = this.take(n);
    if (n === 0) return 0;
    // Little-endian two's complement.
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  bytes(n: number): Uint8Array {
    const b = this.take(n);
    this.charge(n);
    // A copy: the caller may reuse its receive buffer after reading.
    return b.slice();
  }

  list(op: number): unknown[] {
    const l = this.top(op);
    if (!(l instanceof PyList)) fail("DASK_ERR_PICKLE_INVALID", `opcode 0x${hex(op)} on a non-list at offset ${this.p - 1}`);
    return l.items;
  }

  dict(op: number): PyDict {
    const d = this.top(op);
    if (!(d instanceof PyDict)) fail("DASK_ERR_PICKLE_INVALID", `opcode 0x${hex(op)} on a non-dict at offset ${this.p - 1}`);
    return d;
  }

  /** REDUCE/NEWOBJ: only allow-listed globals; numpy is evaluated here (pure data conversion). */
  call(callable: unknown, args: unknown, via: "reduce" | "newobj", at: number): unknown {
    if (!(callable instanceof GlobalRef)) {
      // Calling the result of another call (cloudpickle does): only representable as opaque.
      if (this.opaque) return new PyObj(DYNAMIC, [callable, args], via);
      fail("DASK_ERR_PICKLE_INVALID", `REDUCE/NEWOBJ of a non-global at offset ${at}`);
    }
    if (!Array.isArray(args)) fail("DASK_ERR_PICKLE_INVALID", `REDUCE/NEWOBJ arguments are not a tuple at offset ${at}`);
    const name = callable.dotted;
    if (!CALLABLE.has(name)) {
      if (this.opaque) return new PyObj(callable, args, via);
      fail("DASK_ERR_PICKLE_GLOBAL", `global ${name} is not allowed (offset ${at})`);
    }
    if (name === "numpy.dtype") {
      if (typeof args[0] !== "string") fail("DASK_ERR_PICKLE_NUMPY", `numpy.dtype of a non-string at offset ${at}`);
      return new PyDtype(args[0]);
    }
    if (name.endsWith("._frombuffer")) return this.frombuffer(args, at);
    return new PyObj(callable, args, via);
  }

  dtypeState(dt: PyDtype, state: unknown): void {
    // numpy's dtype.__reduce__ state: (version, byteorder, subdtype, names, fields, elsize, alignment, flags).
    if (!Array.isArray(state) || state.length < 5 || typeof state[1] !== "string") {
      fail("DASK_ERR_PICKLE_NUMPY", "numpy.dtype state is not the expected tuple");
    }
    dt.byteorder = state[1];
    if (state[2] !== null || state[3] !== null || state[4] !== null) dt.refused = "structured or sub-array dtype";
  }

  frombuffer(args: unknown[], at: number): NumericArray | NdArray {
    // numpy.core.numeric._frombuffer(buf, dtype, shape, order). Translated into the numpy
    // sub-header of dask's "dask" serializer so that numpy.ts (one owner of dtype/order/byte-order
    // rules) builds the value: 1-D native dtypes become a bare typed array, the rest an NdArray.
    const [buf, dt, shape, order] = args;
    if (!(buf instanceof Uint8Array)) fail("DASK_ERR_PICKLE_NUMPY", `_frombuffer of a non-buffer at offset ${at}`);
    if (!(dt instanceof PyDtype)) fail("DASK_ERR_PICKLE_NUMPY", `_frombuffer without a numpy.dtype at offset ${at}`);
    if (dt.refused) fail("DASK_ERR_PICKLE_NUMPY", `numpy ${dt.refused} is not supported`);
    if (!Array.isArray(shape) || !shape.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) {
      fail("DASK_ERR_PICKLE_NUMPY", `_frombuffer shape is not a tuple of ints at offset ${at}`);
    }
    if (order !== "C" && order !== "F") fail("DASK_ERR_PICKLE_NUMPY", `_frombuffer order ${String(order)} at offset ${at}`);
    // Only plain numeric kinds: "f8", "i4", "u1", "b1", "c16" (no units, records, strings, objects).
    if (!/^[iufcb][0-9]+$/.test(dt.spec)) fail("DASK_ERR_PICKLE_NUMPY", `numpy dtype ${JSON.stringify(dt.spec)} is not supported`);
    const info = parseDtype("<" + dt.spec);
    if (!info) fail("DASK_ERR_PICKLE_NUMPY", `numpy dtype ${JSON.stringify(dt.spec)} is not supported`);
    const dims = shape as number[];
    let count = 1;
    for (const n of dims) count *= n;
    if (count * info.itemsize !== buf.length) fail("DASK_ERR_PICKLE_NUMPY", `_frombuffer: ${buf.length} bytes do not hold shape (${dims.join(", ")}) of ${dt.spec}`);
    // Strides in bytes for the declared memory order.
    const strides = new Array<number>(dims.length);
    let acc = info.itemsize;
    const axes = dims.map((_, i) => i);
    if (order === "C") axes.reverse();
    for (const i of axes) {
      strides[i] = acc;
      acc *= dims[i]!;
    }
    const bo = dt.byteorder === ">" || dt.byteorder === "|" ? dt.byteorder : "<";
    // A copy happens for F order, big-endian data or an unaligned buffer: charge it.
    if (order === "F" || bo === ">" || buf.byteOffset % info.lane !== 0) this.charge(buf.length);
    try {
      return deserializeNumpy({ dtype: [0, (info.itemsize === 1 ? "|" : bo) + dt.spec], shape: dims, strides }, [buf])!;
    } catch (e) {
      fail("DASK_ERR_PICKLE_NUMPY", `numpy array refused: ${(e as Error).message}`);
    }
  }
}

/** Converts VM values into the public representation; shares repeated references; bounded depth. */
class Finalizer {
  readonly maxDepth: number;
  readonly vm: Vm;
  readonly done = new Map<object, unknown>();
  readonly busy = new Set<object>();
  constructor(options: PickleReadOptions, vm: Vm) {
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.vm = vm;
  }

  /** `funcSlot`: this value is a Task's func, where a user GlobalRef is allowed. */
  value(v: unknown, depth: number, funcSlot: boolean): unknown {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof GlobalRef) {
      if (!funcSlot && !this.vm.opaque && !VALUE_GLOBALS.has(v.dotted)) {
        fail("DASK_ERR_PICKLE_GLOBAL", `global ${v.dotted} is not allowed outside Task.func`);
      }
      return v;
    }
    if (ArrayBuffer.isView(v) || v instanceof NdArray) return v;
    if (depth >= this.maxDepth) fail("DASK_ERR_PICKLE_DEPTH", `pickle nested deeper than maxDepth ${this.maxDepth}`);
    const cached = this.done.get(v);
    if (cached !== undefined) return cached;
    const d = depth + 1;
    if (Array.isArray(v) || v instanceof PyList) {
      // Register the output before filling it, so self-references (cycles) resolve to it.
      const out: unknown[] = Array.isArray(v) ? tuple() : [];
      this.done.set(v, out);
      for (const x of Array.isArray(v) ? v : v.items) out.push(this.value(x, d, false));
      return out;
    }
    if (v instanceof PyDict) return this.dict(v, d);
    if (v instanceof PySet) {
      const out = new Set<unknown>();
      this.done.set(v, out);
      for (const x of v.items) out.add(this.value(x, d, false));
      return out;
    }
    if (v instanceof PyObj) {
      if (this.busy.has(v)) fail("DASK_ERR_PICKLE_SHAPE", `${v.cls.dotted} object contains itself`);
      this.busy.add(v);
      const out = this.object(v, d);
      this.busy.delete(v);
      this.done.set(v, out);
      return out;
    }
    if (v instanceof PyDtype) {
      if (this.vm.opaque) return new OpaqueObject("numpy.dtype", tuple<unknown>(v.spec), null);
      fail("DASK_ERR_PICKLE_NUMPY", "a bare numpy.dtype is not supported");
    }
    fail("DASK_ERR_PICKLE_INVALID", "unexpected value in pickle");
  }

  dict(v: PyDict, d: number): unknown {
    const allStrings = v.keys.every((k) => typeof k === "string");
    if (allStrings) {
      const out: Record<string, unknown> = {};
      this.done.set(v, out);
      for (let i = 0; i < v.keys.length; i++) {
        // defineProperty: a "__proto__" key becomes an own property, never the prototype.
        Object.defineProperty(out, v.keys[i] as string, {
          value: this.value(v.values[i], d, false), writable: true, enumerable: true, configurable: true,
        });
      }
      return out;
    }
    const out = new Map<unknown, unknown>();
    this.done.set(v, out);
    for (let i = 0; i < v.keys.length; i++) out.set(this.value(v.keys[i], d, false), this.value(v.values[i], d, false));
    return out;
  }

  key(v: unknown, what: string, nullable: boolean): Key | null {
    const k = this.value(v, 0, false);
    if (k === null && nullable) return null;
    if (!isKey(k)) fail("DASK_ERR_PICKLE_SHAPE", `${what} key is not a str, number or tuple`);
    return k;
  }

  // args/kwargs/containers build a NEW array or Map per node, even when many nodes share one
  // memoised tuple or dict: charged per element so that sharing cannot multiply the output.
  args(v: unknown, d: number, what: string): unknown[] {
    if (!Array.isArray(v)) fail("DASK_ERR_PICKLE_SHAPE", `${what} args are not a tuple`);
    this.vm.charge(v.length);
    return v.map((x) => this.value(x, d, false));
  }

  kwargs(v: unknown, d: number): Map<string, unknown> {
    const out = new Map<string, unknown>();
    if (v === null) return out;
    if (!(v instanceof PyDict)) fail("DASK_ERR_PICKLE_SHAPE", "Task kwargs are not a dict");
    this.vm.charge(v.keys.length);
    for (let i = 0; i < v.keys.length; i++) {
      const k = v.keys[i];
      if (typeof k !== "string") fail("DASK_ERR_PICKLE_SHAPE", "Task kwargs key is not a str");
      out.set(k, this.value(v.values[i], d, false));
    }
    return out;
  }

  object(o: PyObj, d: number): unknown {
    const name = o.cls.dotted;
    const args = o.args as unknown[];
    const noState = (): void => {
      if (o.hasState) fail("DASK_ERR_PICKLE_STATE", `${name} does not take BUILD state`);
    };
    if (!CALLABLE.has(name)) {
      // Only reachable with opaqueGlobals.
      return new OpaqueObject(name, this.value(args, d, true), o.hasState ? this.value(o.state, d, true) : null);
    }
    if (o.cls.module === TS) {
      const cls = o.cls.name;
      const container = CONTAINER_CLASSES[cls];
      if (cls === "Task" || container) {
        if (o.via === "newobj") {
          // Python's own pickling: NEWOBJ(cls, ()) + BUILD(positional slot state).
          const n = container ? CONTAINER_SLOTS : TASK_SLOTS;
          // Task state is a tuple; NestedContainer.__getstate__ returns a list.
          const s = o.state instanceof PyList ? o.state.items : o.state;
          if (!Array.isArray(s) || s.length !== n) fail("DASK_ERR_PICKLE_SHAPE", `${name} state is not ${n} slot values`);
          if (container) return new ContainerNode(container, this.args(s[CONTAINER_ARGS], d, name));
          return new TaskNode(
            this.key(s[TASK_KEY], name, true),
            this.value(s[TASK_FUNC], d, true),
            this.args(s[TASK_ARGS], d, name),
            this.kwargs(s[TASK_KWARGS], d),
          );
        }
        noState();
        // REDUCE forms, as our writer (and probe_modern.py's) emits them.
        if (container) return this.reducedContainer(container, args, d);
        if (args.length < 2) fail("DASK_ERR_PICKLE_SHAPE", "Task(key, func, *args) needs key and func");
        return new TaskNode(this.key(args[0], name, true), this.value(args[1], d, true), this.args(args.slice(2), d, name));
      }
      noState();
      if (cls === "TaskRef") {
        if (args.length !== 1) fail("DASK_ERR_PICKLE_SHAPE", "TaskRef takes one key");
        return new TaskRefNode(this.key(args[0], name, false)!);
      }
      if (cls === "Alias") {
        if (args.length < 1 || args.length > 2) fail("DASK_ERR_PICKLE_SHAPE", "Alias takes key[, target]");
        const key = this.key(args[0], name, false)!;
        // Alias(key, None) means target = key (dask/_task_spec.py Alias.__init__).
        const target = args.length === 2 && args[1] !== null ? this.key(args[1], name, false)! : key;
        return new AliasNode(key, target);
      }
      if (args.length !== 2) fail("DASK_ERR_PICKLE_SHAPE", "DataNode takes key and value");
      return new DataNodeNode(this.key(args[0], name, true), this.value(args[1], d, false));
    }
    noState();
    if (name === "dask.utils.apply") {
      // apply(Task, (key, func, *args), {kwargs}): how a client passes kwargs through REDUCE.
      const [fn, targs, kw] = args;
      if (!(fn instanceof GlobalRef) || fn.dotted !== `${TS}.Task`) fail("DASK_ERR_PICKLE_GLOBAL", "dask.utils.apply is allowed only as apply(Task, args, kwargs)");
      if (!Array.isArray(targs) || targs.length < 2) fail("DASK_ERR_PICKLE_SHAPE", "apply(Task, ...) args need key and func");
      return new TaskNode(
        this.key(targs[0], "Task", true),
        this.value(targs[1], d, true),
        this.args(targs.slice(2), d, "Task"),
        args.length > 2 ? this.kwargs(kw, d) : new Map(),
      );
    }
    // builtins constructors (protocol 2-4 pickles of set/frozenset/bytearray; copyreg-free forms).
    const it = args.length === 0 ? [] : this.value(args[0], d, false);
    if (Array.isArray(it) || it instanceof Set) this.vm.charge(Array.isArray(it) ? it.length : it.size);
    switch (name) {
      case "builtins.str":
      case "builtins.unicode": {
        // Only the identity form str("...") is data; str(<object>) would run __str__/__repr__.
        if (args.length === 1 && typeof it === "string") return it;
        fail("DASK_ERR_PICKLE_SHAPE", "str() is allowed only on one str argument");
      }
      case "builtins.set":
      case "builtins.frozenset":
        return new Set(iterable(it, name));
      case "builtins.list":
        return [...iterable(it, name)];
      case "builtins.tuple":
        return asTuple([...iterable(it, name)]);
      case "builtins.dict": {
        if (it instanceof Map || (it !== null && typeof it === "object" && !Array.isArray(it))) return it;
        return {};
      }
      default: { // builtins.bytearray
        if (it instanceof Uint8Array) return it;
        if (args.length === 0) return new Uint8Array(0);
        fail("DASK_ERR_PICKLE_SHAPE", "bytearray from a non-bytes value");
      }
    }
  }

  reducedContainer(kind: ContainerKind, args: unknown[], d: number): ContainerNode {
    if (kind === "dict") {
      // Dict({k: v, ...}) as written by clients; flatten to the slot form [k0, v0, ...].
      if (args.length === 1 && args[0] instanceof PyDict) {
        const src = args[0];
        this.vm.charge(2 * src.keys.length);
        const items: unknown[] = [];
        for (let i = 0; i < src.keys.length; i++) items.push(this.value(src.keys[i], d, false), this.value(src.values[i], d, false));
        return new ContainerNode(kind, items);
      }
      if (args.length % 2 !== 0) fail("DASK_ERR_PICKLE_SHAPE", "Dict needs a dict or key/value pairs");
    }
    return new ContainerNode(kind, this.args(args, d, kind));
  }
}

/** tuple(...items) without spreading (a spread of 10^5+ arguments throws RangeError). */
function asTuple(items: unknown[]): unknown[] {
  const t = tuple<unknown>();
  for (const x of items) t.push(x);
  return t;
}

function iterable(v: unknown, name: string): Iterable<unknown> {
  if (Array.isArray(v) || v instanceof Set) return v;
  fail("DASK_ERR_PICKLE_SHAPE", `${name}() of a non-sequence`);
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** UTF-8 with Python's "surrogatepass" (lone surrogates are legal in pickled str). */
function decodeUtf8(b: Uint8Array, offset: number): string {
  try {
    return utf8.decode(b);
  } catch {
    // Slow path: accept ED A0..BF xx (encoded surrogates), reject anything else invalid.
    let s = "";
    for (let i = 0; i < b.length; ) {
      const c = b[i]!;
      if (c === 0xed && i + 2 < b.length && (b[i + 1]! & 0xe0) === 0xa0 && (b[i + 2]! & 0xc0) === 0x80) {
        s += String.fromCharCode(0xd000 | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f));
        i += 3;
        continue;
      }
      // Find the next run of valid UTF-8 by decoding one code point at a time.
      const len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      try {
        s += utf8.decode(b.subarray(i, i + len));
      } catch {
        fail("DASK_ERR_PICKLE_UTF8", `invalid UTF-8 in a str at offset ${offset + i}`);
      }
      i += len;
    }
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Exceptions for display (a non-Python client cannot raise a Python exception; it can show it).

/**
 * "builtins.ZeroDivisionError: division by zero" from a tblib `unpickle_exception` pickle or a
 * plain `REDUCE(ExcClass, args)` pickle. Never throws: unreadable input gives a short hex summary.
 */
export function describeException(bytes: Uint8Array): string {
  let v: unknown;
  try {
    v = readPickle(bytes, { opaqueGlobals: true, maxDepth: 200 });
  } catch (e) {
    const head = Array.from(bytes.subarray(0, 24), (x) => hex(x)).join("");
    const why = e instanceof PickleError ? e.code : "error";
    return `unreadable exception pickle (${bytes.length} bytes, ${why}): ${head}${bytes.length > 24 ? "..." : ""}`;
  }
  try {
    return describeValue(v);
  } catch {
    return `exception pickle (${bytes.length} bytes) of an unexpected shape`;
  }
}

function describeValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof OpaqueObject) {
    const args = Array.isArray(v.args) ? v.args : [];
    // tblib.pickling_support.unpickle_exception(func, args, cause, tb, ...): func is the class.
    if (v.global.startsWith("tblib.") && args[0] instanceof GlobalRef) return excText(args[0].dotted, args[1]);
    return excText(v.global, args);
  }
  if (v instanceof GlobalRef) return v.dotted;
  return pyRepr(v, 0);
}

/** Python's str(exc): "" for no args, str(arg) for one (repr for KeyError), repr(args) otherwise. */
function excText(cls: string, args: unknown): string {
  const a = Array.isArray(args) ? args : [];
  if (a.length === 0) return cls;
  const msg = a.length === 1 && !cls.endsWith("KeyError") ? pyStr(a[0]) : a.length === 1 ? pyRepr(a[0], 0) : pyRepr(asTuple(a), 0);
  return `${cls}: ${msg}`;
}

function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v, 0);
}

/** A short Python-like repr for display only. */
function pyRepr(v: unknown, depth: number): string {
  if (depth > 8) return "...";
  if (v === null) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") return pyStrRepr(v);
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (v instanceof Uint8Array) return `b'${Array.from(v.subarray(0, 32), (x) => (x >= 0x20 && x < 0x7f && x !== 0x27 && x !== 0x5c ? String.fromCharCode(x) : "\\x" + hex(x))).join("")}${v.length > 32 ? "..." : ""}'`;
  if (v instanceof GlobalRef) return v.dotted;
  if (v instanceof OpaqueObject) return `${v.global}(...)`;
  if (Array.isArray(v)) {
    const inner = v.slice(0, 16).map((x) => pyRepr(x, depth + 1)).join(", ") + (v.length > 16 ? ", ..." : "");
    return isTuple(v) ? `(${inner}${v.length === 1 ? "," : ""})` : `[${inner}]`;
  }
  return Object.prototype.toString.call(v);
}
