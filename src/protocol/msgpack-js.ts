// msgpack codec, pure-TypeScript backend (the "TS twin" of assembly/msgpack/), with the value
// mapping both backends share (protocol §4.1-4.2: dask packs with use_bin_type=True and unpacks
// with raw=False, strict_map_key=False and an object_hook for the "__Set__"/"__Serialized__" maps).
//
// Pure: no IO, no timers, no process.env. Callers use src/protocol/msgpack.ts, which picks this
// backend or the Wasm one; the Wasm binding (src/wasm/msgpack.ts) reuses the helpers exported
// here (`buildMap`, `readUtf8`, `readInt64`, the encoder) so both backends map values identically.
//
// Decoded `bin` values are views (subarray) into the input bytes, not copies: a dask frame is
// owned by its message, and copying a 10 MB payload would double its cost. A caller that keeps
// a bin after reusing the input buffer must copy it.
import { ConfigError, errorFromStatus } from "../errors.ts";
import * as S from "../../assembly/status.ts";

/** Limits applied while decoding; every one is checked before anything of that size is allocated. */
export interface DecodeLimits {
  maxDepth: number;
  maxStrBytes: number;
  maxBinBytes: number;
  maxArrayLength: number;
  maxMapLength: number;
}

/**
 * Defaults. Python's unpacker in dask uses max lengths 2^31-1 (protocol §4.1); we are tighter
 * where it costs nothing real: dask messages nest < 20 levels, a single str above 1 GiB or a
 * container with more than 16M entries is an attack or a bug, not a task graph.
 */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxDepth: 128,
  maxStrBytes: 1 << 30, // 1 GiB
  maxBinBytes: 1 << 30, // 1 GiB (larger payloads travel as separate frames anyway)
  maxArrayLength: 1 << 24, // 16,777,216
  maxMapLength: 1 << 24,
});

export interface DecodeOptions extends Partial<DecodeLimits> {
  /** integer-valued float64 -> `Float64` box so re-encoding is byte-identical (default false) */
  preserveFloats?: boolean;
  /**
   * Called for string-keyed maps whose FIRST key starts with "__" (after their entries are
   * decoded), except the `{"__Set__": true, "as-list": [...]}` shape, which always becomes a Set.
   * Its return value replaces the map (dask's __Serialized__/__Pickled__ placeholders).
   */
  objectHook?: (obj: Record<string, unknown>) => unknown;
}

export interface EncodeOptions {
  /**
   * Called for objects that are not plain objects/Array/Map/Set/Uint8Array/Float64; returns the
   * value to encode instead (encoded without calling the replacer again), or throws.
   */
  replacer?: (value: object) => unknown;
}

/** A number that is always encoded as float64 (0xcb), e.g. a Python float that happens to be 1.0. */
export class Float64 {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** Resolved decode settings; both backends read the same shape. */
export interface DecodeConfig extends DecodeLimits {
  preserveFloats: boolean;
  objectHook: ((obj: Record<string, unknown>) => unknown) | undefined;
}

const LIMIT_NAMES = ["maxDepth", "maxStrBytes", "maxBinBytes", "maxArrayLength", "maxMapLength"] as const;

/** Options resolved against the defaults; a limit that is not a number >= 0 is a ConfigError naming it. */
export function decodeConfig(options?: DecodeOptions): DecodeConfig {
  const o = options ?? {};
  if (options !== undefined) {
    for (const name of LIMIT_NAMES) {
      const v = o[name];
      if (v !== undefined && !(typeof v === "number" && v >= 0)) throw new ConfigError(`options.${name} must be a number >= 0, got ${String(v)}`);
    }
  }
  return {
    maxDepth: o.maxDepth ?? DEFAULT_DECODE_LIMITS.maxDepth,
    maxStrBytes: o.maxStrBytes ?? DEFAULT_DECODE_LIMITS.maxStrBytes,
    maxBinBytes: o.maxBinBytes ?? DEFAULT_DECODE_LIMITS.maxBinBytes,
    maxArrayLength: o.maxArrayLength ?? DEFAULT_DECODE_LIMITS.maxArrayLength,
    maxMapLength: o.maxMapLength ?? DEFAULT_DECODE_LIMITS.maxMapLength,
    preserveFloats: o.preserveFloats ?? false,
    objectHook: o.objectHook,
  };
}

// ---------------------------------------------------------------------------------------------
// Shared value helpers (used by the Wasm binding too)

// ignoreBOM: a str that starts with U+FEFF keeps it, as Python's decoder does.
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * UTF-8 bytes -> string. Short pure-ASCII strings (most dask keys and field names) skip
 * TextDecoder, whose per-call overhead dominates below ~32 bytes (msgpackr and
 * @msgpack/msgpack use the same cut-over). `validated` = the bytes are known to be valid UTF-8
 * (the Wasm kernel checked them), so the non-fatal decoder is enough.
 */
export function readUtf8(bytes: Uint8Array, start: number, len: number, validated: boolean): string {
  if (len < 32) {
    let s = "";
    const end = start + len;
    let i = start;
    for (; i < end; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === end) return s;
  }
  const view = bytes.subarray(start, start + len);
  if (validated) return lenientDecoder.decode(view);
  try {
    return fatalDecoder.decode(view);
  } catch {
    throw errorFromStatus(S.ERR_MSGPACK_UTF8, `str of ${len} bytes at byte ${start}`);
  }
}

// Map keys repeat in every message ("op", "key", "stimulus_id", ...). Building them again each
// time creates a fresh string that V8 must internalize before using it as a property name;
// returning the same string from a small cache avoids both (msgpackr:unpack.js `readKey` does the
// same). Direct-mapped, keys up to KEY_MAX bytes; a slot is overwritten on collision.
const KEY_MAX = 16;
const KEY_SLOTS = 4096;
const keyBytes = new Uint8Array(KEY_SLOTS * KEY_MAX);
const keyLens = new Uint8Array(KEY_SLOTS);
const keyStrs: Array<string | undefined> = new Array<string | undefined>(KEY_SLOTS).fill(undefined);

/**
 * A map key of `len` bytes at `start`, through the cache when short. `validated` as for
 * readUtf8; a cache hit is always valid (the same bytes were decoded before).
 */
export function readKey(bytes: Uint8Array, start: number, len: number, validated: boolean): string {
  if (len > KEY_MAX || len === 0) return readUtf8(bytes, start, len, validated);
  let h = len;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ bytes[start + i]!, 0x01000193);
  const slot = (h ^ (h >>> 15)) & (KEY_SLOTS - 1);
  const at = slot * KEY_MAX;
  const cached = keyStrs[slot];
  if (cached !== undefined && keyLens[slot] === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (keyBytes[at + i] !== bytes[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return cached;
  }
  const s = readUtf8(bytes, start, len, validated);
  keyBytes.set(bytes.subarray(start, start + len), at);
  keyLens[slot] = len;
  keyStrs[slot] = s;
  return s;
}

/** int64/uint64 at `pos` (big-endian): a number when it is a safe integer, else a bigint. */
export function readInt64(view: DataView, pos: number, signed: boolean): number | bigint {
  const big = signed ? view.getBigInt64(pos) : view.getBigUint64(pos);
  return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
}

/** Sets `obj[key] = value` without ever touching the prototype ("__proto__" becomes an own key). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/**
 * The value of a decoded map whose keys were all strings: the `__Set__` shape becomes a Set,
 * other maps whose first key starts with "__" go through `objectHook` (protocol §4.2).
 */
export function finishObject(obj: Record<string, unknown>, firstKey: string | undefined, hook: DecodeConfig["objectHook"]): unknown {
  if (firstKey === undefined || firstKey.charCodeAt(0) !== 0x5f || firstKey.charCodeAt(1) !== 0x5f) return obj;
  if (firstKey === "__Set__" && obj.__Set__ === true && Array.isArray(obj["as-list"]) && Object.keys(obj).length === 2) {
    return new Set(obj["as-list"] as unknown[]);
  }
  return hook ? hook(obj) : obj;
}

/** Turns the string-keyed prefix of a map into a Map once a non-string key shows up. */
export function objectToMap(obj: Record<string, unknown>): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  for (const k of Object.keys(obj)) m.set(k, obj[k]);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Decoder

function fail(status: number, pos: number, what?: string): never {
  throw errorFromStatus(status, what ? `${what} at byte ${pos}` : `at byte ${pos}`);
}

/** One decode call's state; a fresh object per call keeps decode() re-entrant (objectHook may decode). */
class JsDecoder {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly end: number;
  readonly cfg: DecodeConfig;
  pos = 0;

  constructor(bytes: Uint8Array, cfg: DecodeConfig) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.end = bytes.length;
    this.cfg = cfg;
  }

  /** Ensures `n` more bytes exist; otherwise the input is truncated. */
  need(n: number): void {
    if (this.pos + n > this.end) fail(S.ERR_MSGPACK_TRUNCATED, this.pos, `need ${n} more bytes`);
  }

  /**
   * One value at `pos`. `depth` = containers already open around it; checks happen in the same
   * order as in the Wasm kernel (length limit, then depth, then bytes present) so both backends
   * report the same code for the same bytes.
   */
  value(depth: number): unknown {
    if (this.pos >= this.end) fail(S.ERR_MSGPACK_TRUNCATED, this.pos);
    const start = this.pos;
    const b = this.bytes[this.pos++]!;
    // The fix-forms first: positive/negative fixint, fixmap, fixarray, fixstr cover most bytes
    // of a dask message.
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.map(b & 0x0f, depth, start);
    if (b <= 0x9f) return this.array(b & 0x0f, depth, start);
    if (b <= 0xbf) return this.str(b & 0x1f, start);
    const v = this.view;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        this.need(1);
        return this.bin(this.bytes[this.pos++]!, start);
      case 0xc5:
        this.need(2);
        this.pos += 2;
        return this.bin(v.getUint16(this.pos - 2), start);
      case 0xc6:
        this.need(4);
        this.pos += 4;
        return this.bin(v.getUint32(this.pos - 4), start);
      case 0xca:
        this.need(4);
        this.pos += 4;
        return v.getFloat32(this.pos - 4);
      case 0xcb: {
        this.need(8);
        this.pos += 8;
        const f = v.getFloat64(this.pos - 8);
        // Python floats that are integers (1.0, -0.0) would re-encode as ints without the box.
        return this.cfg.preserveFloats && Number.isInteger(f) ? new Float64(f) : f;
      }
      case 0xcc:
        this.need(1);
        return this.bytes[this.pos++]!;
      case 0xcd:
        this.need(2);
        this.pos += 2;
        return v.getUint16(this.pos - 2);
      case 0xce:
        this.need(4);
        this.pos += 4;
        return v.getUint32(this.pos - 4);
      case 0xcf:
        this.need(8);
        this.pos += 8;
        return readInt64(v, this.pos - 8, false);
      case 0xd0:
        this.need(1);
        this.pos += 1;
        return v.getInt8(this.pos - 1);
      case 0xd1:
        this.need(2);
        this.pos += 2;
        return v.getInt16(this.pos - 2);
      case 0xd2:
        this.need(4);
        this.pos += 4;
        return v.getInt32(this.pos - 4);
      case 0xd3:
        this.need(8);
        this.pos += 8;
        return readInt64(v, this.pos - 8, true);
      case 0xd9:
        this.need(1);
        return this.str(this.bytes[this.pos++]!, start);
      case 0xda:
        this.need(2);
        this.pos += 2;
        return this.str(v.getUint16(this.pos - 2), start);
      case 0xdb:
        this.need(4);
        this.pos += 4;
        return this.str(v.getUint32(this.pos - 4), start);
      case 0xdc:
        this.need(2);
        this.pos += 2;
        return this.array(v.getUint16(this.pos - 2), depth, start);
      case 0xdd:
        this.need(4);
        this.pos += 4;
        return this.array(v.getUint32(this.pos - 4), depth, start);
      case 0xde:
        this.need(2);
        this.pos += 2;
        return this.map(v.getUint16(this.pos - 2), depth, start);
      case 0xdf:
        this.need(4);
        this.pos += 4;
        return this.map(v.getUint32(this.pos - 4), depth, start);
      case 0xc1:
        return fail(S.ERR_MSGPACK_INVALID, start, "reserved byte 0xc1");
      default:
        // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext: dask never sends them (protocol §4.1).
        return fail(S.ERR_MSGPACK_EXT, start, `ext type 0x${b.toString(16)}`);
    }
  }

  str(len: number, start: number): string {
    if (len > this.cfg.maxStrBytes) fail(S.ERR_MSGPACK_STR_TOO_LARGE, start, `str of ${len} bytes > maxStrBytes ${this.cfg.maxStrBytes}`);
    this.need(len);
    const p = this.pos;
    this.pos += len;
    return readUtf8(this.bytes, p, len, false);
  }

  bin(len: number, start: number): Uint8Array {
    if (len > this.cfg.maxBinBytes) fail(S.ERR_MSGPACK_BIN_TOO_LARGE, start, `bin of ${len} bytes > maxBinBytes ${this.cfg.maxBinBytes}`);
    this.need(len);
    this.pos += len;
    return this.bytes.subarray(this.pos - len, this.pos);
  }

  array(n: number, depth: number, start: number): unknown[] {
    if (n > this.cfg.maxArrayLength) fail(S.ERR_MSGPACK_ARRAY_TOO_LONG, start, `array of ${n} > maxArrayLength ${this.cfg.maxArrayLength}`);
    if (depth >= this.cfg.maxDepth) fail(S.ERR_MSGPACK_TOO_DEEP, start, `depth > maxDepth ${this.cfg.maxDepth}`);
    // Every element takes at least one byte: a claimed length beyond the rest of the input is
    // truncated input, refused before `new Array(n)` could allocate the claimed size.
    if (n > this.end - this.pos) fail(S.ERR_MSGPACK_TRUNCATED, start, `array of ${n} in ${this.end - this.pos} bytes`);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  map(n: number, depth: number, start: number): unknown {
    if (n > this.cfg.maxMapLength) fail(S.ERR_MSGPACK_MAP_TOO_LONG, start, `map of ${n} > maxMapLength ${this.cfg.maxMapLength}`);
    if (depth >= this.cfg.maxDepth) fail(S.ERR_MSGPACK_TOO_DEEP, start, `depth > maxDepth ${this.cfg.maxDepth}`);
    if (n * 2 > this.end - this.pos) fail(S.ERR_MSGPACK_TRUNCATED, start, `map of ${n} in ${this.end - this.pos} bytes`);
    // Optimistic: dask maps are string-keyed; switch to a Map at the first other key (ints,
    // tuples = arrays, bytes; strict_map_key=False in protocol §4.1).
    const obj: Record<string, unknown> = {};
    let firstKey: string | undefined;
    for (let i = 0; i < n; i++) {
      // fixstr keys (all dask field names) go through the key cache
      const b = this.pos < this.end ? this.bytes[this.pos]! : 0;
      let k: unknown;
      // (anything unusual, a limit or a truncation, takes the general path and its checks)
      if (b >= 0xa0 && b <= 0xbf && (b & 0x1f) <= this.cfg.maxStrBytes && this.pos + 1 + (b & 0x1f) <= this.end) {
        k = readKey(this.bytes, this.pos + 1, b & 0x1f, false);
        this.pos += 1 + (b & 0x1f);
      } else {
        k = this.value(depth + 1);
      }
      if (typeof k !== "string") return this.mapRest(objectToMap(obj), k, n - i, depth);
      if (i === 0) firstKey = k;
      setOwn(obj, k, this.value(depth + 1));
    }
    return finishObject(obj, firstKey, this.cfg.objectHook);
  }

  /** Finishes a map as a `Map`; `key` is the first non-string key, `left` entries remain including it. */
  mapRest(m: Map<unknown, unknown>, key: unknown, left: number, depth: number): Map<unknown, unknown> {
    m.set(key, this.value(depth + 1));
    for (let i = 1; i < left; i++) {
      const k = this.value(depth + 1);
      m.set(k, this.value(depth + 1));
    }
    return m;
  }
}

/**
 * Builders recurse once per nesting level. A caller who raises maxDepth beyond what the JS stack
 * holds (~3,000 levels on Node 24's default stack) gets the same coded error as for maxDepth,
 * not a RangeError from deep inside the decoder.
 */
export function stackExhausted(err: unknown): never {
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    throw errorFromStatus(S.ERR_MSGPACK_TOO_DEEP, "nesting exhausted the JS stack before maxDepth");
  }
  throw err;
}

/** Decodes exactly one value from `bytes`; trailing bytes or truncation are coded ProtocolErrors. */
export function decodeJs(bytes: Uint8Array, options?: DecodeOptions): unknown {
  const d = new JsDecoder(bytes, decodeConfig(options));
  let value: unknown;
  try {
    value = d.value(0);
  } catch (err) {
    stackExhausted(err);
  }
  if (d.pos !== d.end) fail(S.ERR_MSGPACK_TRAILING, d.pos, `${d.end - d.pos} bytes after the value`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Encoder (used by both backends: see src/wasm/msgpack.ts for why)

/**
 * Containers deeper than this are refused on encode: real messages nest < 20 levels, and the
 * limit turns a cyclic structure into a coded error instead of a stack overflow.
 */
const MAX_ENCODE_DEPTH = 512;
const INITIAL_ENCODE_BYTES = 64 * 1024;

const textEncoder = new TextEncoder();

/** Minimal msgpack writer (the smallest header for every int/str/bin/array/map, as Python msgpack). */
class JsEncoder {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  replacer: EncodeOptions["replacer"];

  constructor(buf: Uint8Array, replacer: EncodeOptions["replacer"]) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.replacer = replacer;
  }

  ensure(n: number): void {
    const want = this.pos + n;
    if (want <= this.buf.length) return;
    // Double for small messages; a big payload gets its size plus 1/8 instead of the next power
    // of two (a 10 MB bin would otherwise allocate and zero 16 MB).
    const cap = Math.max(this.buf.length * 2, want + (want >>> 3));
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Writes one value; `depth` counts open containers (MAX_ENCODE_DEPTH guards cycles). */
  value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        return this.str(v);
      case "number":
        return this.number(v);
      case "boolean":
        return this.u8(v ? 0xc3 : 0xc2);
      case "undefined":
        return this.u8(0xc0);
      case "bigint":
        return this.bigint(v);
      case "object":
        if (v === null) return this.u8(0xc0);
        return this.object(v, depth, true);
      default:
        throw errorFromStatus(S.ERR_MSGPACK_UNSUPPORTED, `a ${typeof v}`);
    }
  }

  number(n: number): void {
    // Integers as ints (what Python ints become); everything else, and -0, as float64 like a
    // Python float. Integer-valued floats beyond 2^53 stay float64: they are not exact ints.
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) this.int(n);
    else this.float64(n);
  }

  float64(n: number): void {
    this.ensure(9);
    this.buf[this.pos] = 0xcb;
    this.view.setFloat64(this.pos + 1, n);
    this.pos += 9;
  }

  int(n: number): void {
    this.ensure(9);
    const b = this.buf;
    const p = this.pos;
    if (n >= 0) {
      if (n < 0x80) {
        b[p] = n;
        this.pos = p + 1;
      } else if (n < 0x100) {
        b[p] = 0xcc;
        b[p + 1] = n;
        this.pos = p + 2;
      } else if (n < 0x10000) {
        b[p] = 0xcd;
        this.view.setUint16(p + 1, n);
        this.pos = p + 3;
      } else if (n < 0x100000000) {
        b[p] = 0xce;
        this.view.setUint32(p + 1, n);
        this.pos = p + 5;
      } else {
        b[p] = 0xcf;
        this.view.setBigUint64(p + 1, BigInt(n));
        this.pos = p + 9;
      }
    } else if (n >= -0x20) {
      b[p] = n + 0x100;
      this.pos = p + 1;
    } else if (n >= -0x80) {
      b[p] = 0xd0;
      this.view.setInt8(p + 1, n);
      this.pos = p + 2;
    } else if (n >= -0x8000) {
      b[p] = 0xd1;
      this.view.setInt16(p + 1, n);
      this.pos = p + 3;
    } else if (n >= -0x80000000) {
      b[p] = 0xd2;
      this.view.setInt32(p + 1, n);
      this.pos = p + 5;
    } else {
      b[p] = 0xd3;
      this.view.setBigInt64(p + 1, BigInt(n));
      this.pos = p + 9;
    }
  }

  bigint(n: bigint): void {
    // Minimal like any Python int: small bigints get the same bytes as the equal number.
    if (n >= -9007199254740991n && n <= 9007199254740991n) return this.int(Number(n));
    this.ensure(9);
    if (n > 0n && n <= 0xffffffffffffffffn) {
      this.buf[this.pos] = 0xcf;
      this.view.setBigUint64(this.pos + 1, n);
    } else if (n < 0n && n >= -0x8000000000000000n) {
      this.buf[this.pos] = 0xd3;
      this.view.setBigInt64(this.pos + 1, n);
    } else {
      throw errorFromStatus(S.ERR_MSGPACK_UNSUPPORTED, `bigint ${n} outside int64/uint64`);
    }
    this.pos += 9;
  }

  str(s: string): void {
    const n = s.length;
    // Reserve the header for the worst case (3 UTF-8 bytes per UTF-16 unit), write the bytes,
    // then shift them left if the real length needs a smaller header (msgpackr does the same).
    const max = n * 3;
    const hdr = max < 32 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    this.ensure(hdr + max);
    const start = this.pos + hdr;
    let len: number;
    if (n < 64) {
      len = this.utf8Small(s, start);
    } else {
      len = textEncoder.encodeInto(s, this.buf.subarray(start)).written;
    }
    const need = len < 32 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
    if (need !== hdr) this.buf.copyWithin(this.pos + need, start, start + len);
    const b = this.buf;
    const p = this.pos;
    if (need === 1) b[p] = 0xa0 | len;
    else if (need === 2) {
      b[p] = 0xd9;
      b[p + 1] = len;
    } else if (need === 3) {
      b[p] = 0xda;
      this.view.setUint16(p + 1, len);
    } else {
      b[p] = 0xdb;
      this.view.setUint32(p + 1, len);
    }
    this.pos = p + need + len;
  }

  /** UTF-8 of a short string at `at`; lone surrogates become U+FFFD exactly as TextEncoder does. */
  utf8Small(s: string, at: number): number {
    const b = this.buf;
    let p = at;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        b[p++] = c;
      } else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c <= 0xdfff) {
          const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
          if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
            b[p++] = 0xf0 | (c >> 18);
            b[p++] = 0x80 | ((c >> 12) & 0x3f);
            b[p++] = 0x80 | ((c >> 6) & 0x3f);
            b[p++] = 0x80 | (c & 0x3f);
            continue;
          }
          c = 0xfffd;
        }
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      }
    }
    return p - at;
  }

  header(len: number, fix: number, fixMax: number, op16: number, op8: number): void {
    // op8 = 0 for arrays and maps, which have no 8-bit length form
    this.ensure(5);
    const b = this.buf;
    const p = this.pos;
    if (len < fixMax) {
      b[p] = fix | len;
      this.pos = p + 1;
    } else if (op8 !== 0 && len < 0x100) {
      b[p] = op8;
      b[p + 1] = len;
      this.pos = p + 2;
    } else if (len < 0x10000) {
      b[p] = op16;
      this.view.setUint16(p + 1, len);
      this.pos = p + 3;
    } else {
      b[p] = op16 + 1;
      this.view.setUint32(p + 1, len);
      this.pos = p + 5;
    }
  }

  /** bin 8/16/32; one `set` copies the payload (the only copy a large value gets here). */
  bin(u: Uint8Array): void {
    const len = u.length;
    if (len > 0xffffffff) throw errorFromStatus(S.ERR_MSGPACK_UNSUPPORTED, `bin of ${len} bytes`);
    this.ensure(5 + len);
    const b = this.buf;
    const p = this.pos;
    if (len < 0x100) {
      b[p] = 0xc4;
      b[p + 1] = len;
      this.pos = p + 2;
    } else if (len < 0x10000) {
      b[p] = 0xc5;
      this.view.setUint16(p + 1, len);
      this.pos = p + 3;
    } else {
      b[p] = 0xc6;
      this.view.setUint32(p + 1, len);
      this.pos = p + 5;
    }
    b.set(u, this.pos);
    this.pos += len;
  }

  /**
   * Containers and boxed values. Plain objects are tested before instanceof checks because they
   * are most of a message; `mayReplace` is false for a replacer's own result, so a replacer that
   * returns something unsupported gets an error instead of being called in a loop.
   */
  object(v: object, depth: number, mayReplace: boolean): void {
    if (depth >= MAX_ENCODE_DEPTH) throw errorFromStatus(S.ERR_MSGPACK_TOO_DEEP, `encoding deeper than ${MAX_ENCODE_DEPTH} (a cycle?)`);
    if (Array.isArray(v)) {
      this.header(v.length, 0x90, 16, 0xdc, 0);
      for (let i = 0; i < v.length; i++) this.value(v[i], depth + 1);
      return;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      const rec = v as Record<string, unknown>;
      const keys = Object.keys(rec);
      this.header(keys.length, 0x80, 16, 0xde, 0);
      for (let i = 0; i < keys.length; i++) {
        this.str(keys[i]!);
        this.value(rec[keys[i]!], depth + 1);
      }
      return;
    }
    if (v instanceof Uint8Array) return this.bin(v);
    if (v instanceof Float64) return this.float64(v.value);
    if (v instanceof Map) {
      this.header(v.size, 0x80, 16, 0xde, 0);
      for (const [k, x] of v) {
        this.value(k, depth + 1);
        this.value(x, depth + 1);
      }
      return;
    }
    if (v instanceof Set) {
      // dask's msgpack_encode_default for Python sets (protocol §4.2)
      this.header(2, 0x80, 16, 0xde, 0);
      this.str("__Set__");
      this.u8(0xc3);
      this.str("as-list");
      this.header(v.size, 0x90, 16, 0xdc, 0);
      for (const x of v) this.value(x, depth + 1);
      return;
    }
    if (mayReplace && this.replacer) {
      const r = this.replacer(v);
      if (typeof r === "object" && r !== null) return this.object(r, depth, false);
      return this.value(r, depth);
    }
    const name = (proto as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? "object";
    throw errorFromStatus(S.ERR_MSGPACK_UNSUPPORTED, `${name} (typed arrays other than Uint8Array, class instances: use options.replacer)`);
  }
}

let spare: Uint8Array | undefined;

/**
 * Encodes one value. A 64 KiB scratch buffer is reused between calls and the result is copied
 * out of it; a message that outgrows it is returned as a view of its own grown buffer, which
 * saves a copy of large payloads.
 */
export function encodeJs(value: unknown, options?: EncodeOptions): Uint8Array {
  const scratch = spare ?? new Uint8Array(INITIAL_ENCODE_BYTES);
  spare = undefined; // re-entrant calls from a replacer get their own buffer
  const e = new JsEncoder(scratch, options?.replacer);
  try {
    e.value(value, 0);
  } finally {
    spare = scratch;
  }
  return e.buf === scratch ? scratch.slice(0, e.pos) : e.buf.subarray(0, e.pos);
}
