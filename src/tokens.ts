// Task tokens and keys: a canonical byte encoding of (function reference, args, kwargs) in TS,
// hashed with MD5 in Wasm (assembly/token.ts), so identical submissions share a key, as dask's
// `tokenize` (md5 of a deterministic representation) and DaskDistributedDispatcher.jl's
// `get_key` do. Keys read `name-<32 hex>` like dask's (`inc-3f1b…`).
//
// Role: the facade over the token kernel. The encoder part is pure (no IO, no clock, no
// randomness, no dependence on the platform's byte order); the only side effect is the Wasm
// instance this module owns (src/wasm/token.ts) and a bounded cache of function references.
// DASK_WASM_BACKEND=js, read once when the first hash is needed, swaps the Wasm kernel for
// its TS twin (same digests, slower). It must never produce a token for a value it cannot
// encode deterministically: such values raise DaskError "DASK_ERR_TOKENIZE" carrying the
// path of the offending value (`args[1].opts.f`), never a random or identity-based token.
// Keys are not a security boundary (a client may name any key); MD5 only has to be stable
// and collision-free for honest inputs, and it is what dask itself uses.
//
// ## Canonical encoding, format version 1
//
// canonicalEncode(v) = 0x01 (format version) followed by enc(v). enc is a tagged, prefix-free
// byte format (every encoding says where it ends, so concatenations never collide). `uv(n)` is
// unsigned LEB128 (7 bits per byte, low first, minimal length); lengths are BYTE counts for
// strings and binary data, ELEMENT counts for containers. Tags are ASCII to read well in dumps.
//
//   null           'N'                      undefined     'U'
//   false          'F'                      true          'T'
//   integer n >= 0 'I' uv(n)                integer n < 0 'J' uv(-1 - n)
//     (an "integer" is a number for which Number.isSafeInteger holds, except -0)
//   other number   'D' f64 little-endian    (-0 stays -0, so f(-0) and f(0) keep apart;
//                                            every NaN is written as 0x7ff8000000000000)
//   bigint         'B' sign(0|1) uv(k) k magnitude bytes little-endian (0n: sign 0, k = 0)
//                  (1n and 1 differ: JS tells them apart, so functions can too)
//   string         'S' uv(bytes) UTF-8      (a lone surrogate is written as its 3-byte
//                                            WTF-8 form, so it never collides with U+FFFD)
//   Uint8Array     'Y' uv(bytes) bytes      (Node Buffers included: they are Uint8Arrays)
//   other typed    'A' dtype uv(bytes) elements little-endian; dtype is numpy's type char:
//     array          b Int8  C Uint8Clamped  h Int16  H Uint16  i Int32  I Uint32
//                    e Float16  f Float32  d Float64  q BigInt64  Q BigUint64
//                  (raw element bytes, as dask's normalize_token for numpy: NaN payloads kept)
//   Array          'L' uv(count) enc(item)*  (holes read as undefined)
//   tuple(...)     'P' uv(count) enc(item)*  (isTuple from src/protocol/values.ts)
//   plain object   'O' uv(count) (enc(key as string) enc(value))*   own enumerable string keys
//   Map            'M' uv(count) (enc(key) enc(value))*
//   Set            'E' uv(count) enc(element)*
//     Entries/elements of O, M and E are sorted by their encoded bytes (unsigned,
//     lexicographic); the encodings are prefix-free, so that orders by key first. Insertion
//     order therefore never matters (dask's normalize_token sorts dict items likewise).
//     Symbol-keyed properties are ignored, as JSON.stringify ignores them.
//   Date           'd' f64 little-endian of getTime() (an invalid Date is NaN)
//   x.__dask_tokenize__()  'K' enc(result)   (checked before Map/Set/Date/plain objects, after
//                  arrays and typed arrays: futures and key references tokenize as what
//                  they stand for)
//   task           'X' enc(fn as string) uv(args.length) enc(arg)* enc(kwargs as object)
//                  (taskKey only; missing kwargs encode as {}, so f(x) == f(x, {}))
//
// tokenize(...values) hashes 0x01 'P' uv(values.length) enc(value)*, i.e. the values as a
// tuple. Anything else (functions, symbols, class instances without __dask_tokenize__, WeakMap,
// Promise, DataView, ArrayBuffer, cycles, nesting deeper than MAX_DEPTH) is an error.
//
// The golden keys in test/tokens.test.ts pin this format: changing any byte of it changes every
// key, so bump FORMAT_VERSION and re-pin them deliberately.
import { DaskError } from "./errors.ts";
import { isTuple } from "./protocol/values.ts";
import { TokenCore, TokenJs } from "./wasm/token.ts";
import { envFlag } from "./runtime/wasm-source.ts";

export type FunctionRef = string; // e.g. "tasks.js#inc" or "wasm:<key>#add"

export interface TaskSpecInput {
  fn: FunctionRef;
  args: readonly unknown[];
  kwargs?: Record<string, unknown>;
}

/** First byte of every canonical encoding; bump when the format changes (see header). */
export const FORMAT_VERSION = 1;

/** Containers nested deeper than this are refused (also bounds JS recursion). */
export const MAX_DEPTH = 1000;

/** A value that has no canonical encoding; `path` names it from the call's root (`args[0].x`). */
export class TokenizeError extends DaskError {
  readonly reason: string;
  path: string;
  constructor(reason: string, path = "") {
    super("DASK_ERR_TOKENIZE", path ? `cannot tokenize ${reason} at ${path}` : `cannot tokenize ${reason}`);
    this.name = "TokenizeError";
    this.reason = reason;
    this.path = path;
  }
  /** Called while unwinding: each container adds its own segment in front. */
  prepend(segment: string): void {
    this.path = segment + this.path;
    this.message = `cannot tokenize ${this.reason} at ${this.path}`;
  }
}

// Tags (see header).
const T_NULL = 0x4e, T_UNDEF = 0x55, T_FALSE = 0x46, T_TRUE = 0x54; // N U F T
const T_UINT = 0x49, T_NINT = 0x4a, T_F64 = 0x44, T_BIGINT = 0x42; // I J D B
const T_STR = 0x53, T_BYTES = 0x59, T_TYPED = 0x41; // S Y A
const T_LIST = 0x4c, T_TUPLE = 0x50, T_OBJECT = 0x4f, T_MAP = 0x4d, T_SET = 0x45; // L P O M E
const T_DATE = 0x64, T_TOKENIZED = 0x4b, T_TASK = 0x58; // d K X

/** Typed-array name -> [numpy type char, element size]; Uint8Array has its own tag. */
const DTYPES: Record<string, readonly [number, number]> = {
  Int8Array: [0x62, 1], Uint8ClampedArray: [0x43, 1], Int16Array: [0x68, 2], Uint16Array: [0x48, 2],
  Int32Array: [0x69, 4], Uint32Array: [0x49, 4], Float16Array: [0x65, 2], Float32Array: [0x66, 4],
  Float64Array: [0x64, 8], BigInt64Array: [0x71, 8], BigUint64Array: [0x51, 8],
};

// Element bytes are written little-endian; on a big-endian host they are swapped on the way.
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const IDENT = /^[A-Za-z_$][\w$]*$/;
const propSegment = (k: string): string => (IDENT.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);

function describe(v: unknown): string {
  if (typeof v === "function") return `a function (${v.name || "anonymous"})`;
  if (typeof v === "symbol") return `a symbol (${String(v.description)})`;
  if (typeof v === "object" && v !== null) {
    const tag = Object.prototype.toString.call(v).slice(8, -1);
    const ctor = (v as { constructor?: { name?: unknown } }).constructor?.name;
    const name = typeof ctor === "string" && ctor ? ctor : tag;
    return `an instance of ${name} without __dask_tokenize__()`;
  }
  return `a value of type ${typeof v}`;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as object | null;
  // Object.prototype of this realm, a null-prototype object, or another realm's root prototype.
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/** LEB128 of n at buf[pos..]; returns the end. The caller has reserved the room. */
function writeUv(buf: Uint8Array, pos: number, n: number): number {
  // Above 2^31 bit operators would truncate, so peel 7 bits arithmetically first.
  while (n >= 0x80000000) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Unsigned lexicographic order of buf[a..ea) and buf[b..eb) (a proper prefix first). */
function compareSpans(buf: Uint8Array, a: number, ea: number, b: number, eb: number): number {
  for (; a < ea && b < eb; a++, b++) {
    const d = buf[a]! - buf[b]!;
    if (d !== 0) return d;
  }
  return ea - a - (eb - b);
}

/** Writes canonical encodings into one growable buffer; reused between calls (see `acquire`). */
class Encoder {
  buf = new Uint8Array(4096);
  dv = new DataView(this.buf.buffer);
  pos = 0;
  /** Containers being encoded, outermost first: a value met again here is a cycle. */
  #stack: object[] = [];
  #depth = 0;
  busy = false;

  reset(): void {
    this.pos = 0;
    this.#depth = 0;
    this.#stack.length = 0;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned LEB128 of a safe non-negative integer (minimal length, at most 8 bytes). */
  uv(n: number): void {
    this.ensure(8);
    this.pos = writeUv(this.buf, this.pos, n);
  }

  f64(tag: number, v: number): void {
    this.ensure(9);
    this.buf[this.pos] = tag;
    if (v !== v) {
      // One NaN: 0x7ff8000000000000 little-endian, whatever payload the engine carries.
      this.dv.setUint32(this.pos + 1, 0, true);
      this.dv.setUint32(this.pos + 5, 0x7ff80000, true);
    } else {
      this.dv.setFloat64(this.pos + 1, v, true);
    }
    this.pos += 9;
  }

  num(v: number): void {
    // int32 first (the common case), then the rest of the safe integers; -0 is a float.
    if ((v | 0) === v ? v !== 0 || 1 / v > 0 : Number.isSafeInteger(v)) {
      if (v >= 0) {
        this.byte(T_UINT);
        this.uv(v);
      } else {
        this.byte(T_NINT);
        this.uv(-1 - v);
      }
    } else {
      this.f64(T_F64, v);
    }
  }

  str(s: string): void {
    const n = s.length;
    // A UTF-16 unit becomes at most 3 UTF-8 bytes. Short strings (3n < 128) have a one-byte
    // length prefix for sure; longer ones are written after a 5-byte gap and moved back once
    // the length (and so the prefix width) is known.
    this.ensure(3 * n + 6);
    const buf = this.buf;
    buf[this.pos++] = T_STR;
    const short = n < 43;
    const start = this.pos + (short ? 1 : 5);
    let p = start;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[p++] = c;
      } else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d < 0xe000) {
            // A surrogate pair: one 4-byte sequence.
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
            buf[p++] = 0xf0 | (c >> 18);
            buf[p++] = 0x80 | ((c >> 12) & 0x3f);
            buf[p++] = 0x80 | ((c >> 6) & 0x3f);
            buf[p++] = 0x80 | (c & 0x3f);
            continue;
          }
        }
        // BMP character, or a lone surrogate written as WTF-8 (same 3-byte shape).
        buf[p++] = 0xe0 | (c >> 12);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      }
    }
    const len = p - start;
    if (short) {
      buf[this.pos] = len;
      this.pos = p;
    } else {
      // At most 5 bytes for len < 2^35, so the prefix never reaches `start`; no ensure() here
      // (it could reallocate and drop the bytes just written past this.pos).
      this.pos = writeUv(buf, this.pos, len);
      buf.copyWithin(this.pos, start, p);
      this.pos += len;
    }
  }

  bytes(tag: number, view: ArrayBufferView, dtype: number, size: number): void {
    const len = view.byteLength;
    this.ensure(len + 12);
    this.buf[this.pos++] = tag;
    if (dtype >= 0) this.buf[this.pos++] = dtype;
    this.uv(len);
    const src = new Uint8Array(view.buffer, view.byteOffset, len);
    this.buf.set(src, this.pos);
    if (!HOST_LE && size > 1) {
      // Big-endian host: reverse each element's bytes in place to make them little-endian.
      const b = this.buf;
      for (let e = this.pos; e < this.pos + len; e += size) b.subarray(e, e + size).reverse();
    }
    this.pos += len;
  }

  bigint(v: bigint): void {
    const neg = v < 0n;
    let hex = (neg ? -v : v).toString(16);
    if (hex === "0") hex = "";
    if (hex.length & 1) hex = "0" + hex;
    const k = hex.length >> 1;
    this.byte(T_BIGINT);
    this.byte(neg ? 1 : 0);
    this.uv(k);
    this.ensure(k);
    // Magnitude little-endian: the last hex pair is the lowest byte.
    for (let i = 0; i < k; i++) this.buf[this.pos + i] = parseInt(hex.slice(hex.length - 2 * i - 2, hex.length - 2 * i), 16);
    this.pos += k;
  }

  enter(o: object): void {
    const stack = this.#stack;
    for (let i = 0; i < this.#depth; i++) {
      if (stack[i] === o) throw new TokenizeError("a cycle (a container that contains itself)");
    }
    if (this.#depth >= MAX_DEPTH) throw new TokenizeError(`nesting deeper than ${MAX_DEPTH} levels`);
    stack[this.#depth++] = o;
  }

  leave(): void {
    this.#depth--;
  }

  /** enc(v): see the module header. */
  value(v: unknown): void {
    switch (typeof v) {
      case "number":
        return this.num(v);
      case "string":
        return this.str(v);
      case "boolean":
        return this.byte(v ? T_TRUE : T_FALSE);
      case "undefined":
        return this.byte(T_UNDEF);
      case "bigint":
        return this.bigint(v);
      case "object":
        if (v === null) return this.byte(T_NULL);
        return this.object(v);
      default:
        throw new TokenizeError(describe(v));
    }
  }

  object(v: object): void {
    if (Array.isArray(v)) return this.list(isTuple(v) ? T_TUPLE : T_LIST, v);
    if (ArrayBuffer.isView(v)) {
      const name = (v as unknown as { [Symbol.toStringTag]?: string })[Symbol.toStringTag];
      if (name === "Uint8Array") return this.bytes(T_BYTES, v, -1, 1);
      const dt = name !== undefined ? DTYPES[name] : undefined;
      if (dt) return this.bytes(T_TYPED, v, dt[0], dt[1]);
      throw new TokenizeError(describe(v));
    }
    const hook = (v as { __dask_tokenize__?: unknown }).__dask_tokenize__;
    if (typeof hook === "function") return this.tokenized(v, hook as () => unknown);
    if (v instanceof Map) return this.map(v);
    if (v instanceof Set) return this.set(v);
    if (v instanceof Date) return this.f64(T_DATE, v.getTime());
    if (isPlainObject(v)) return this.plain(v as Record<string, unknown>);
    throw new TokenizeError(describe(v));
  }

  list(tag: number, a: readonly unknown[]): void {
    this.enter(a);
    this.byte(tag);
    this.uv(a.length);
    let i = 0;
    try {
      for (; i < a.length; i++) this.value(a[i]);
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend(`[${i}]`);
      throw e;
    }
    this.leave();
  }

  tokenized(v: object, hook: () => unknown): void {
    this.enter(v);
    this.byte(T_TOKENIZED);
    try {
      let r: unknown;
      try {
        r = hook.call(v);
      } catch (cause) {
        if (cause instanceof TokenizeError) throw cause;
        const err = new TokenizeError(`a value whose __dask_tokenize__() threw (${(cause as Error)?.message ?? String(cause)})`);
        (err as { cause?: unknown }).cause = cause;
        throw err;
      }
      this.value(r);
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend(".__dask_tokenize__()");
      throw e;
    }
    this.leave();
  }

  plain(o: Record<string, unknown>): void {
    this.enter(o);
    const keys = Object.keys(o);
    this.byte(T_OBJECT);
    this.uv(keys.length);
    const start = this.pos;
    const ends = new Array<number>(keys.length);
    let i = 0;
    try {
      for (; i < keys.length; i++) {
        const k = keys[i]!;
        this.str(k);
        this.value(o[k]);
        ends[i] = this.pos;
      }
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend(propSegment(keys[i]!));
      throw e;
    }
    this.sortSpans(start, ends);
    this.leave();
  }

  map(m: Map<unknown, unknown>): void {
    this.enter(m);
    this.byte(T_MAP);
    this.uv(m.size);
    const start = this.pos;
    const ends = new Array<number>(m.size);
    let i = 0;
    let inKey = true;
    let key: unknown;
    try {
      for (const [k, v] of m) {
        key = k;
        inKey = true;
        this.value(k);
        inKey = false;
        this.value(v);
        ends[i++] = this.pos;
      }
    } catch (e) {
      if (e instanceof TokenizeError) {
        const primitive = typeof key === "string" || typeof key === "number" || typeof key === "boolean";
        e.prepend(inKey ? `.entries()[${i}][0]` : primitive ? `.get(${JSON.stringify(key)})` : `.entries()[${i}][1]`);
      }
      throw e;
    }
    this.sortSpans(start, ends);
    this.leave();
  }

  set(s: Set<unknown>): void {
    this.enter(s);
    this.byte(T_SET);
    this.uv(s.size);
    const start = this.pos;
    const ends = new Array<number>(s.size);
    let i = 0;
    try {
      for (const v of s) {
        this.value(v);
        ends[i++] = this.pos;
      }
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend(`.values()[${i}]`);
      throw e;
    }
    this.sortSpans(start, ends);
    this.leave();
  }

  /**
   * Reorders the back-to-back spans [start, ends[0]), [ends[0], ends[1]), ... by their bytes
   * (unsigned lexicographic; a proper prefix sorts first, which never happens between two
   * distinct prefix-free encodings, and equal spans are interchangeable).
   */
  sortSpans(start: number, ends: number[]): void {
    const n = ends.length;
    if (n < 2) return;
    const buf = this.buf;
    // Common case (kwargs written in a stable order): already ascending, nothing to move.
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) {
      sorted = compareSpans(buf, i === 1 ? start : ends[i - 2]!, ends[i - 1]!, ends[i - 1]!, ends[i]!) <= 0;
    }
    if (sorted) return;
    const order = new Array<number>(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const from = (i: number): number => (i === 0 ? start : ends[i - 1]!);
    order.sort((x, y) => compareSpans(buf, from(x), ends[x]!, from(y), ends[y]!));
    const copy = buf.slice(start, ends[n - 1]!);
    let p = start;
    for (const i of order) {
      const s = from(i) - start;
      const e = ends[i]! - start;
      buf.set(copy.subarray(s, e), p);
      p += e - s;
    }
  }

  /** 'X' enc(fn) uv(nargs) enc(arg)* enc(kwargs as object); see the header. */
  task(fn: FnInfo, args: readonly unknown[], kwargs: Record<string, unknown> | undefined): void {
    if (!Array.isArray(args)) throw new TokenizeError(`args that are not an array (${describe(args)})`, "args");
    // 'X' and enc(fn) come pre-encoded from the function-reference cache.
    const head = fn.head;
    this.ensure(head.length);
    const buf = this.buf;
    let p = this.pos;
    for (let j = 0; j < head.length; j++) buf[p++] = head[j]!;
    this.pos = p;
    this.uv(args.length);
    let i = 0;
    try {
      for (; i < args.length; i++) this.value(args[i]);
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend(`args[${i}]`);
      throw e;
    }
    if (kwargs === undefined) {
      this.byte(T_OBJECT);
      this.uv(0);
      return;
    }
    if (typeof kwargs !== "object" || kwargs === null || !isPlainObject(kwargs)) {
      throw new TokenizeError(`kwargs that are not a plain object (${describe(kwargs)})`, "kwargs");
    }
    try {
      this.plain(kwargs);
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend("kwargs");
      throw e;
    }
  }
}

const shared = new Encoder();

/** Per function reference: the key prefix and the task encoding's first bytes ('X' enc(fn)). */
interface FnInfo {
  readonly prefix: string;
  readonly head: Uint8Array;
}

// Function references repeat across a graph (a map over 10,000 chunks names one function), so
// their key prefix and encoding are computed once. Bounded: cleared when it reaches the limit.
const FN_CACHE_LIMIT = 4096;
const fnCache = new Map<string, FnInfo>();

/** The cached FnInfo for `fn`; throws TokenizeError (path "fn") for an unusable reference. */
function fnInfo(fn: unknown): FnInfo {
  if (typeof fn === "string") {
    const hit = fnCache.get(fn);
    if (hit !== undefined) return hit;
  }
  const name = funcName(fn as FunctionRef);
  const enc = new Encoder();
  enc.byte(T_TASK);
  enc.str(fn as string);
  const info: FnInfo = { prefix: `${name}-`, head: enc.buf.slice(0, enc.pos) };
  if (fnCache.size >= FN_CACHE_LIMIT) fnCache.clear();
  fnCache.set(fn as string, info);
  return info;
}

/**
 * Runs `fn` with a reset encoder. The shared one is reused unless it is busy, which happens
 * when a __dask_tokenize__ method itself calls tokenize(): then a fresh encoder is used.
 * Errors get their final message here (a path that starts at the root names the call's root).
 */
function withEncoder<T>(root: string, fn: (enc: Encoder) => T): T {
  const enc = shared.busy ? new Encoder() : shared;
  enc.busy = true;
  enc.reset();
  try {
    return fn(enc);
  } catch (e) {
    if (e instanceof TokenizeError) e.prepend(root);
    throw e;
  } finally {
    enc.busy = false;
    // Do not keep a huge buffer alive after a one-off large value.
    if (enc.buf.length > 1 << 20) {
      enc.buf = new Uint8Array(4096);
      enc.dv = new DataView(enc.buf.buffer);
    }
  }
}

/** What the facade needs from a hashing backend (src/wasm/token.ts: Wasm kernel or TS twin). */
interface TokenBackend {
  digestMany(inputs: readonly Uint8Array[]): Uint8Array;
  hexSpans(data: Uint8Array, ends: ArrayLike<number>, count: number): string;
}

let core: TokenBackend | undefined;
let coreName: "wasm" | "js" | undefined;

/** The backend, chosen once (DASK_WASM_BACKEND=js picks the TS twin; default Wasm). */
function tokenCore(): TokenBackend {
  if (core) return core;
  coreName = envFlag("DASK_WASM_BACKEND") === "js" ? "js" : "wasm";
  core = coreName === "js" ? new TokenJs() : new TokenCore();
  return core;
}

/** Which hashing backend this process uses ("wasm" unless DASK_WASM_BACKEND=js). */
export function tokenBackend(): "wasm" | "js" {
  tokenCore();
  return coreName!;
}

/** Deterministic bytes for `value` (format in the module header). Throws TokenizeError. */
export function canonicalEncode(value: unknown): Uint8Array {
  return withEncoder("value", (enc) => {
    enc.byte(FORMAT_VERSION);
    enc.value(value);
    return enc.buf.slice(0, enc.pos);
  });
}

/** 32 lowercase hex chars: MD5 of the values' canonical encoding as one tuple. */
export function tokenize(...values: unknown[]): string {
  return withEncoder("values", (enc) => {
    enc.byte(FORMAT_VERSION);
    enc.list(T_TUPLE, values);
    const ends = [enc.pos];
    return tokenCore().hexSpans(enc.buf, ends, 1);
  });
}

/**
 * The key prefix for a function reference, as dask's key_split gives "inc" for "inc-<hex>":
 * the export name after the last '#' (and after its last '.', "tasks.js#ns.inc" -> "inc"),
 * or without a '#' the part after the last '/' or ':'. Throws TokenizeError if that is empty.
 */
export function funcName(fn: FunctionRef): string {
  if (typeof fn !== "string") throw new TokenizeError("a function reference that is not a string", "fn");
  const hash = fn.lastIndexOf("#");
  let name: string;
  if (hash >= 0) {
    name = fn.slice(hash + 1);
    name = name.slice(name.lastIndexOf(".") + 1);
  } else {
    name = fn.slice(Math.max(fn.lastIndexOf("/"), fn.lastIndexOf(":")) + 1);
  }
  if (name.length === 0) throw new TokenizeError(`a function reference with no name (${JSON.stringify(fn)})`, "fn");
  return name;
}

/** `${funcName(fn)}-${md5 hex of the task's canonical encoding}`, e.g. "inc-3f1b…". */
export function taskKey(fn: FunctionRef, args: readonly unknown[], kwargs?: Record<string, unknown>): string {
  const info = fnInfo(fn);
  const hex = withEncoder("", (enc) => {
    enc.byte(FORMAT_VERSION);
    enc.task(info, args, kwargs);
    return tokenCore().hexSpans(enc.buf, [enc.pos], 1);
  });
  return info.prefix + hex;
}

/**
 * taskKey for every task, hashed in ONE Wasm call: all encodings are written back to back,
 * then md5Batch digests them together. Errors name the task: `tasks[3].args[0]`.
 */
export function taskKeys(tasks: readonly TaskSpecInput[]): string[] {
  const n = tasks.length;
  const prefixes = new Array<string>(n);
  const hex = withEncoder("tasks", (enc) => {
    const ends = new Uint32Array(n);
    let i = 0;
    try {
      for (; i < n; i++) {
        const t = tasks[i]!;
        const info = fnInfo(t.fn);
        prefixes[i] = info.prefix;
        enc.byte(FORMAT_VERSION);
        enc.task(info, t.args, t.kwargs);
        ends[i] = enc.pos;
      }
    } catch (e) {
      if (e instanceof TokenizeError) e.prepend(`[${i}].`);
      throw e;
    }
    return tokenCore().hexSpans(enc.buf, ends, n);
  });
  // One string per key: the cached "name-" plus a slice of the batch's hex string.
  const keys = new Array<string>(n);
  for (let i = 0; i < n; i++) keys[i] = prefixes[i] + hex.slice(32 * i, 32 * i + 32);
  return keys;
}

/** MD5 of `data` (16 bytes), computed in Wasm. */
export function md5(data: Uint8Array): Uint8Array {
  return tokenCore().digestMany([data]);
}

/** MD5 of each input, concatenated (16 * inputs.length bytes); one Wasm call for all. */
export function md5Batch(inputs: readonly Uint8Array[]): Uint8Array {
  return tokenCore().digestMany(inputs);
}
