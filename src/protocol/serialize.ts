// dask's serialization layer: messages with `{"__Serialized__": i}` / `{"__Pickled__": i}`
// placeholders whose sub-headers and sub-frames follow frame 0, and the serializer families a
// non-Python peer can read and write (DASK-PROTOCOL-2022.12.md §3.1, §4.2-4.5, §7.1;
// MODERN-DELTA.md §3; reference: shared/protocol/probes/daskwire.py and distributed 2022.12.1
// protocol/core.py dumps/loads, protocol/serialize.py serialize/deserialize/serialize_and_split).
//
// Role: value <-> (header, frames) and message <-> frames. Pure: no IO, no timers, no randomness
// (Python samples random spots to decide on compression; we sample evenly spaced ones). Wasm is
// reached only through the msgpack facade and the lz4 loader.
// Must not: execute pickles (the "pickle" family and `__Pickled__` go through the data-only
// pickle reader), trust offsets or counts from the wire (each is checked and a bad one is a coded
// ProtocolError "DASK_ERR_SERIALIZED_FRAMES"), or re-encode a `Serialized` it relays: relayed
// values are written back byte-identical, still compressed (what the scheduler does, §4.3).
//
// JS <-> Python mapping decided here (what `serialize` emits; `deserialize` reads it back):
//   Uint8Array / ArrayBuffer  <-> "dask" bytes            (Python bytes)
//   other typed arrays        <-> "dask" numpy.ndarray    (1-D; see numpy.ts for N-d NdArray)
//   Array                     <-> collection "list"       (a plain msgpack array would be a tuple)
//   tuple()-marked Array      <-> collection "tuple"
//   Set                       <-> collection "set"
//   Map / plain object        <-> collection "dict"       (sub-headers carry "key")
//   anything else msgpack-able <-> "msgpack"              (one frame)
//   not msgpack-able          ->  "error" (text frame, as Python's on_error="message")
// Collection elements are serialized the same way only when they hold something msgpack cannot
// carry to Python faithfully (typed arrays, Sets, Serialize/Serialized); plain nested values go
// as one frame each, so a list of 10,000 numbers is 10,000 small frames, not 10,000
// sub-collections: msgpack for scalars, and a data-only pickle (pickle-writer.ts) for nested
// containers holding arrays, so that a nested list reaches Python as a list, not a tuple.
import { DaskError, PickleError, ProtocolError, errorFromStatus } from "../errors.ts";
import * as S from "../../assembly/status.ts";
import { decode, encode } from "./msgpack.ts";
import type { DecodeOptions } from "./msgpack.ts";
import { readPickle } from "./pickle-reader.ts";
import { writePickle } from "./pickle-writer.ts";
import { compressBlock, decompressBlock } from "./lz4.ts";
import { NdArray, deserializeNumpy, serializeNumpy } from "./numpy.ts";
import type { NumericArray } from "./numpy.ts";
import { isTuple, tuple } from "./values.ts";

export { NdArray } from "./numpy.ts";

/** `pickle.dumps(bytes)` as Python 3.11 writes it (vec:0059 `type-serialized` of "bytes"). */
export const BYTES_TYPE_PICKLE: Uint8Array = Uint8Array.from(
  "80059516000000000000008c086275696c74696e73948c0562797465739493942e".match(/../g)!.map((h) => parseInt(h, 16)),
);

/** Python's `distributed.comm.shard` (TCP) and `distributed.comm.websockets.shard` (WS). */
export const SHARD_BYTES_TCP = 64 * 1024 * 1024;
export const SHARD_BYTES_WS = 8 * 1024 * 1024;

// maybe_compress parameters (distributed/protocol/compression.py, 2022.12.1).
const COMPRESS_MIN_BYTES = 10_000;
const COMPRESS_MAX_BYTES = 2 ** 31;
const SAMPLE_BYTES = 10_000;
const SAMPLE_COUNT = 5;
const KEEP_RATIO = 0.9;

export type Compression = "lz4" | null;

/**
 * A value already in wire form: header (incl. "compression", "split-*" if it came off the
 * wire) + frames exactly as received. `dumps` writes it back verbatim; this is how a peer
 * relays data it cannot or need not read (scheduler-style, `loads(..., {deserialize: false})`).
 */
export class Serialized {
  readonly header: Record<string, unknown>;
  readonly frames: Uint8Array[];
  constructor(header: Record<string, unknown>, frames: Uint8Array[]) {
    this.header = header;
    this.frames = frames;
  }
}

/** An `__Pickled__` value kept opaque (`deserialize: false`): sub-header {"pickled-obj", ...} + buffers. */
export class Pickled {
  readonly header: Record<string, unknown>;
  readonly frames: Uint8Array[];
  constructor(header: Record<string, unknown>, frames: Uint8Array[]) {
    this.header = header;
    this.frames = frames;
  }
}

/** "Serialize this value as sub-frames" (Python's `to_serialize`): the wrapper `dumps` looks for. */
export class Serialize {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

export function toSerialize(value: unknown): Serialize {
  return new Serialize(value);
}

export interface SerializeOptions {
  /** Compress frames that pay (maybe_compress); null/undefined = never. */
  compression?: Compression;
}

export interface DumpsOptions extends SerializeOptions {
  /** Split sub-frames larger than this (default SHARD_BYTES_TCP). */
  shardBytes?: number;
}

export interface DeserializeOptions extends DecodeOptions {
  /** Ceiling for one lz4-decompressed frame (default lz4.ts DEFAULT_MAX_DECOMPRESSED_BYTES). */
  maxDecompressedBytes?: number;
  /**
   * A "pickle" value the pickle reader refuses (a class not on its allow-list) becomes an opaque
   * `Serialized` (an `__Pickled__` one an opaque `Pickled`) instead of failing the whole
   * message; a worker can still store and serve it, or fail just the task it belongs to.
   * Default false: the PickleError propagates.
   */
  keepUnreadable?: boolean;
}

export interface LoadsOptions extends DeserializeOptions {
  /** true (default): values are deserialized; false: kept as Serialized/Pickled for relaying. */
  deserialize?: boolean;
}

type HeaderFrames = { header: Record<string, unknown>; frames: Uint8Array[] };

// ---------------------------------------------------------------------------------------------
// serialize

function isNumericArray(v: unknown): v is NumericArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof Uint8Array);
}

/** Values msgpack would carry to Python as something else (or not at all): serialize them apart. */
function needsOwnHeader(v: unknown, depth = 0): boolean {
  if (typeof v !== "object" || v === null) return false;
  if (v instanceof Uint8Array || v instanceof ArrayBuffer) return false; // bin -> bytes is faithful
  if (v instanceof Serialize || v instanceof Serialized || v instanceof Set || v instanceof NdArray) return true;
  if (ArrayBuffer.isView(v)) return true;
  if (depth > 64) return false; // let msgpack's own depth limit report the cycle
  if (Array.isArray(v)) return v.some((x) => needsOwnHeader(x, depth + 1));
  if (v instanceof Map) {
    for (const x of v.values()) if (needsOwnHeader(x, depth + 1)) return true;
    return false;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return Object.values(v).some((x) => needsOwnHeader(x, depth + 1));
  return false;
}

function collection(kind: "list" | "tuple" | "set" | "dict", entries: Array<[unknown, unknown] | [unknown]>): HeaderFrames {
  const subHeaders: Record<string, unknown>[] = [];
  const lengths: number[] = [];
  const frames: Uint8Array[] = [];
  for (const entry of entries) {
    const { header, frames: f } = serializeValue(entry.length === 2 ? entry[1] : entry[0], false, true);
    // Python pops "key" from each dict element header (serialize.py deserialize).
    if (entry.length === 2) header["key"] = entry[0];
    subHeaders.push(header);
    lengths.push(f.length);
    frames.push(...f);
  }
  return { header: { "sub-headers": subHeaders, "is-collection": true, "frame-lengths": lengths, "type-serialized": kind }, frames };
}

/**
 * `top`: the value was asked for explicitly (the root, or a Serialize), so collections become
 * collection headers. `nested`: the value is an element of a collection, whose header cannot
 * carry per-element "compression"/"split-*" (Python's deserialize ignores them below the top).
 */
function serializeValue(value: unknown, top: boolean, nested: boolean): HeaderFrames {
  if (value instanceof Serialized) {
    // At the top a Serialized goes out as it came in (verbatim relay); inside a collection it is
    // first brought to logical frames.
    if (!nested || (!("compression" in value.header) && !("split-num-sub-frames" in value.header))) {
      return { header: { ...value.header }, frames: [...value.frames] };
    }
    return { header: logicalHeader(value.header), frames: mergeShards(value.header, decompressFrames(value.header, value.frames, {})) };
  }
  if (value instanceof Serialize) return serializeValue(value.value, true, nested);
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) {
    const bytes = value instanceof Uint8Array ? value : new Uint8Array(value);
    return { header: { serializer: "dask", type: "bytes", "type-serialized": BYTES_TYPE_PICKLE, "sub-header": {} }, frames: [bytes] };
  }
  if (value instanceof NdArray || isNumericArray(value)) return serializeNumpy(value);
  // Collections: always at the top (so a JS list reaches Python as a list), below only when an
  // element needs a header of its own (see the module header).
  if (Array.isArray(value) || value instanceof Set || value instanceof Map || isPlainObject(value)) {
    if (top || needsOwnHeader(value)) {
      if (Array.isArray(value)) return collection(isTuple(value) ? "tuple" : "list", value.map((x) => [x] as [unknown]));
      if (value instanceof Set) return collection("set", [...value].map((x) => [x] as [unknown]));
      if (value instanceof Map) return collection("dict", [...value.entries()]);
      return collection("dict", Object.entries(value as Record<string, unknown>));
    }
  }
  if (nested && holdsArray(value)) {
    // msgpack would hand Python a tuple for every nested list ({"b": [2]} -> {'b': (2,)}); the
    // data-only pickle writer keeps lists lists, tuple()s tuples and Sets sets.
    try {
      return { header: { serializer: "pickle", writeable: [] }, frames: [writePickle(value)] };
    } catch (err) {
      if (!(err instanceof DaskError)) throw err; // not writable as a pickle: fall through to msgpack
    }
  }
  try {
    return { header: { serializer: "msgpack" }, frames: [encode(value)] };
  } catch (err) {
    if (!(err instanceof DaskError)) throw err;
    // Python's serialize(on_error="message"): the receiver raises TypeError(text) on loads.
    const name = typeof value === "object" && value !== null ? (Object.getPrototypeOf(value)?.constructor?.name ?? "object") : typeof value;
    return { header: { serializer: "error" }, frames: [new TextEncoder().encode(`Could not serialize object of type ${name}`)] };
  }
}

/** An array somewhere inside a plain container (what msgpack would turn into a tuple). */
function holdsArray(v: unknown, depth = 0): boolean {
  if (typeof v !== "object" || v === null || depth > 64) return false;
  if (Array.isArray(v)) return true;
  if (v instanceof Map) {
    for (const [k, x] of v) if (holdsArray(k, depth + 1) || holdsArray(x, depth + 1)) return true;
    return false;
  }
  return isPlainObject(v) && Object.values(v).some((x) => holdsArray(x, depth + 1));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * A value -> dask header + frames (Python's `serialize(x)` with this module's type mapping).
 * With `compression`, frames that pay are compressed and the header gets "compression" (one
 * entry per frame), as Python's dumps does; Python's bare `serialize` never compresses.
 */
export function serialize(value: unknown, options: SerializeOptions = {}): HeaderFrames {
  const out = serializeValue(value, true, false);
  if (options.compression) compressFrames(out.header, out.frames, options.compression);
  return out;
}

/**
 * Python's maybe_compress: skip frames under 10,000 bytes (or over 2^31), compress 5 samples of
 * 10 kB and skip if they shrink less than to 0.9×, then keep the whole compressed frame only if
 * it is <= 0.9× the original. Loopback is faster than lz4 on incompressible data (DESIGN.md:
 * "lz4 on loopback makes Python's half-compressible transfers 2.5× slower"), hence the sampling.
 */
export function maybeCompress(frame: Uint8Array, compression: Compression): [Compression, Uint8Array] {
  if (!compression) return [null, frame];
  if (compression !== "lz4") throw new ProtocolError("DASK_ERR_COMPRESSION_UNSUPPORTED", `cannot compress with ${String(compression)}`);
  if (frame.length < COMPRESS_MIN_BYTES || frame.length > COMPRESS_MAX_BYTES) return [null, frame];
  let sample = frame;
  if (frame.length > SAMPLE_BYTES * SAMPLE_COUNT) {
    // Evenly spaced instead of random (pure module): first, last and three between.
    sample = new Uint8Array(SAMPLE_BYTES * SAMPLE_COUNT);
    const step = Math.floor((frame.length - SAMPLE_BYTES) / (SAMPLE_COUNT - 1));
    for (let i = 0; i < SAMPLE_COUNT; i++) sample.set(frame.subarray(i * step, i * step + SAMPLE_BYTES), i * SAMPLE_BYTES);
  }
  // The sample's compressed size includes lz4's 4-byte prefix, as Python's len(compress(sample)).
  const sampled = compressBlock(sample);
  if (sampled.length > KEEP_RATIO * sample.length) return [null, frame];
  const whole = sample === frame ? sampled : compressBlock(frame);
  if (whole.length > KEEP_RATIO * frame.length) return [null, frame];
  return ["lz4", whole];
}

/** Python's `_inplace_compress_frames`: compress frames whose entry is null, write the list. */
function compressFrames(header: Record<string, unknown>, frames: Uint8Array[], compression: Compression): void {
  const prior = Array.isArray(header["compression"]) ? (header["compression"] as unknown[]) : [];
  const list: unknown[] = [];
  for (let i = 0; i < frames.length; i++) {
    const c = prior[i] ?? null;
    if (c === null) {
      const [used, out] = maybeCompress(frames[i]!, compression);
      list.push(used);
      frames[i] = out;
    } else list.push(c);
  }
  header["compression"] = list;
}

/** Python's `serialize_and_split`: shards of at most `shardBytes` per logical frame, recorded in the header. */
function serializeAndSplit(value: unknown, shardBytes: number): HeaderFrames {
  const { header, frames } = serializeValue(value, true, false);
  const compression = Array.isArray(header["compression"]) ? (header["compression"] as unknown[]) : [];
  const counts: number[] = [];
  const offsets: number[] = [];
  const outFrames: Uint8Array[] = [];
  const outCompression: unknown[] = [];
  frames.forEach((frame, i) => {
    offsets.push(outFrames.length);
    const c = compression[i] ?? null;
    if (c !== null || frame.length <= shardBytes) {
      counts.push(1);
      outFrames.push(frame);
      outCompression.push(c);
      return;
    }
    // Views, not copies: a 1 GB array becomes 16 subarrays of its own buffer.
    let n = 0;
    for (let at = 0; at < frame.length; at += shardBytes, n++) {
      outFrames.push(frame.subarray(at, at + shardBytes));
      outCompression.push(null);
    }
    counts.push(n);
  });
  header["split-num-sub-frames"] = counts;
  header["split-offsets"] = offsets;
  header["compression"] = outCompression;
  return { header, frames: outFrames };
}

// ---------------------------------------------------------------------------------------------
// deserialize

function framesError(detail: string): ProtocolError {
  return new ProtocolError("DASK_ERR_SERIALIZED_FRAMES", detail);
}

function concat(frames: readonly Uint8Array[]): Uint8Array {
  if (frames.length === 1) return frames[0]!;
  let n = 0;
  for (const f of frames) n += f.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Step 1 of Python's receive path: undo "compression" (one entry per wire frame). */
function decompressFrames(header: Record<string, unknown>, frames: readonly Uint8Array[], options: DeserializeOptions): Uint8Array[] {
  const list = header["compression"];
  if (list === undefined || list === null) return [...frames];
  if (!Array.isArray(list) || list.length !== frames.length) {
    throw framesError(`"compression" lists ${Array.isArray(list) ? list.length : "no"} entries for ${frames.length} frames`);
  }
  return frames.map((frame, i) => {
    const c = list[i];
    if (c === null || c === undefined || c === false) return frame;
    if (c === "lz4") return decompressBlock(frame, { maxDecompressedBytes: options.maxDecompressedBytes });
    // snappy/zstd/zlib only pass through when Python peers are configured for them (§3.1).
    throw new ProtocolError("DASK_ERR_COMPRESSION_UNSUPPORTED", `frame ${i} is compressed with ${JSON.stringify(c)}, which this peer does not read`);
  });
}

/**
 * The out-of-band buffers of an opaque `Pickled` (what the pickle's NEXT_BUFFER opcodes read),
 * decompressed as its sub-header says. A 2026 run_spec with a numpy argument carries one.
 */
export function pickledBuffers(p: Pickled, options: DeserializeOptions = {}): Uint8Array[] {
  return decompressFrames(p.header, p.frames, options);
}

/** Step 2: concatenate shards back into logical frames (merge_and_deserialize). */
function mergeShards(header: Record<string, unknown>, frames: readonly Uint8Array[]): Uint8Array[] {
  const counts = header["split-num-sub-frames"];
  if (counts === undefined) return [...frames];
  const offsets = header["split-offsets"];
  if (!Array.isArray(counts) || !Array.isArray(offsets) || counts.length !== offsets.length) {
    throw framesError(`"split-num-sub-frames" and "split-offsets" do not pair up`);
  }
  return counts.map((n, i) => {
    const off = offsets[i];
    if (!isCount(n) || !isCount(off) || off + n > frames.length) {
      throw framesError(`shard ${i} (offset ${String(off)}, count ${String(n)}) is outside the ${frames.length} frames`);
    }
    return concat(frames.slice(off, off + n));
  });
}

/** What every receiver must do: without "split-*"/"compression" the header of a logical value. */
function logicalHeader(header: Record<string, unknown>): Record<string, unknown> {
  const { compression: _c, "split-num-sub-frames": _n, "split-offsets": _o, "num-sub-frames": _s, ...rest } = header;
  return rest;
}

/**
 * header + frames -> value: decompress, merge shards, then dispatch on the serializer family.
 * Unknown families (and numpy arrays of dtypes we do not map) come back as `Serialized`, so they
 * can still be relayed; "error" throws a DaskError carrying the sender's text.
 */
export function deserialize(header: Record<string, unknown>, frames: readonly Uint8Array[], options: DeserializeOptions = {}): unknown {
  const logical = mergeShards(header, decompressFrames(header, frames, options));
  return deserializeLogical(logicalHeader(header), logical, options, 0);
}

const MAX_COLLECTION_DEPTH = 64;

function deserializeLogical(header: Record<string, unknown>, frames: Uint8Array[], options: DeserializeOptions, depth: number): unknown {
  if ("is-collection" in header) {
    if (depth > MAX_COLLECTION_DEPTH) throw framesError(`collections nested deeper than ${MAX_COLLECTION_DEPTH}`);
    const subs = header["sub-headers"];
    const lengths = header["frame-lengths"];
    if (!Array.isArray(subs) || !Array.isArray(lengths) || subs.length !== lengths.length) {
      throw framesError(`collection "sub-headers" and "frame-lengths" do not pair up`);
    }
    const kind = header["type-serialized"];
    const items: Array<[unknown, unknown]> = [];
    let start = 0;
    for (let i = 0; i < subs.length; i++) {
      const n = lengths[i];
      const sub = subs[i];
      if (!isCount(n) || start + n > frames.length) throw framesError(`collection element ${i} needs frames ${start}..${start + Number(n)} of ${frames.length}`);
      if (typeof sub !== "object" || sub === null || sub instanceof Map) throw framesError(`collection element ${i} has no header map`);
      const { key, ...rest } = sub as Record<string, unknown>;
      items.push([key, deserializeLogical(rest, frames.slice(start, start + n), options, depth + 1)]);
      start += n;
    }
    switch (kind) {
      case "list":
        return items.map((x) => x[1]);
      case "tuple":
        return tuple(...items.map((x) => x[1]));
      case "set":
        return new Set(items.map((x) => x[1]));
      case "dict":
        return dictOf(items);
      default:
        throw framesError(`unknown collection type ${JSON.stringify(kind)}`);
    }
  }
  switch (header["serializer"]) {
    case "msgpack":
      return decode(concat(frames), decodeOnly(options));
    case "dask":
      return deserializeDask(header, frames);
    case "pickle":
      if (frames.length === 0) throw framesError(`a "pickle" value has no frames`);
      try {
        return readPickle(frames[0]!, { buffers: frames.slice(1) });
      } catch (err) {
        if (options.keepUnreadable && err instanceof PickleError) return new Serialized(header, frames);
        throw err;
      }
    case "error": {
      const text = frames.map((f) => new TextDecoder().decode(f)).join("\n");
      throw new DaskError("DASK_ERR_REMOTE_SERIALIZE", `the sender could not serialize this value: ${text}`);
    }
    default:
      return new Serialized(header, frames);
  }
}

/** The msgpack part of our options (limits, preserveFloats, objectHook). */
function decodeOnly(options: LoadsOptions): DecodeOptions {
  const { maxDecompressedBytes: _m, deserialize: _d, keepUnreadable: _k, ...rest } = options;
  return rest;
}

/** Dict collections: a plain object when every key is a string (as msgpack maps decode), else a Map. */
function dictOf(items: Array<[unknown, unknown]>): unknown {
  if (items.every(([k]) => typeof k === "string")) {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of items) Object.defineProperty(obj, k as string, { value: v, enumerable: true, writable: true, configurable: true });
    return obj;
  }
  return new Map(items);
}

const BYTES_TYPES = new Set(["bytes", "bytearray", "memoryview", "builtins.bytes", "builtins.bytearray", "builtins.memoryview"]);

function deserializeDask(header: Record<string, unknown>, frames: Uint8Array[]): unknown {
  const type = header["type"];
  // `type` is informational in Python (it unpickles `type-serialized`); for the few classes we
  // read, the name is enough and no pickle is touched.
  if (typeof type === "string" && BYTES_TYPES.has(type)) return concat(frames);
  if (type === "numpy.ndarray") {
    const sub = header["sub-header"];
    if (typeof sub !== "object" || sub === null) throw framesError(`numpy header without "sub-header"`);
    const arr = deserializeNumpy(sub as Record<string, unknown>, frames);
    if (arr !== undefined) return arr;
  }
  return new Serialized(header, frames);
}

// ---------------------------------------------------------------------------------------------
// dumps / loads

/**
 * A message -> frames: frame 0 is msgpack with placeholders; each Serialize/Serialized/Pickled
 * found (depth-first, insertion order, like msgpack's `default`) appends its msgpack sub-header
 * and sub-frames and becomes `{"__Serialized__": offset}`. Bare typed arrays and NdArrays in a
 * message are serialized as if wrapped in Serialize (Python would refuse them).
 */
export function dumps(msg: unknown, options: DumpsOptions = {}): Uint8Array[] {
  const shardBytes = options.shardBytes ?? SHARD_BYTES_TCP;
  if (!Number.isSafeInteger(shardBytes) || shardBytes < 1) throw new ProtocolError("DASK_ERR_SERIALIZED_FRAMES", `shardBytes must be a positive integer, got ${shardBytes}`);
  const frames: Uint8Array[] = [new Uint8Array(0)];
  const append = (placeholder: string, header: Record<string, unknown>, sub: Uint8Array[]): Record<string, number> => {
    const offset = frames.length;
    frames.push(encode({ ...header, "num-sub-frames": sub.length }));
    for (const f of sub) frames.push(f);
    return { [placeholder]: offset };
  };
  const replacer = (obj: object): unknown => {
    if (obj instanceof Serialized) return append("__Serialized__", obj.header, obj.frames);
    if (obj instanceof Serialize && obj.value instanceof Serialized) return append("__Serialized__", obj.value.header, obj.value.frames);
    if (obj instanceof Pickled) return append("__Pickled__", obj.header, obj.frames);
    if (obj instanceof Serialize || obj instanceof NdArray || isNumericArray(obj)) {
      const { header, frames: sub } = serializeAndSplit(obj instanceof Serialize ? obj.value : obj, shardBytes);
      compressFrames(header, sub, options.compression ?? null);
      return append("__Serialized__", header, sub);
    }
    throw errorFromStatus(S.ERR_MSGPACK_UNSUPPORTED, `${obj.constructor?.name ?? "object"} in a message (wrap values in Serialize)`);
  };
  frames[0] = encode(msg, { replacer });
  return frames;
}

/**
 * Frames -> message. `{"__Serialized__": i}` becomes the deserialized value (or a `Serialized`
 * with the frames as received when `deserialize: false`); `{"__Pickled__": i}` is read with the
 * data-only pickle reader (or kept as `Pickled`). Other "__" maps (e.g. `__Enum__`) pass through.
 */
export function loads(frames: readonly Uint8Array[], options: LoadsOptions = {}): unknown {
  if (frames.length === 0) throw framesError("a message has at least one frame");
  const keepOpaque = options.deserialize === false;
  const decodeOpts = decodeOnly(options);
  const userHook = options.objectHook;
  const subFrames = (obj: Record<string, unknown>, key: string): [Record<string, unknown>, Uint8Array[]] => {
    const offset = obj[key];
    if (!Number.isSafeInteger(offset) || (offset as number) < 1 || (offset as number) >= frames.length) {
      throw framesError(`${key} offset ${String(offset)} is outside the ${frames.length} frames`);
    }
    const header = decode(frames[offset as number]!, { ...decodeOpts, objectHook: undefined });
    if (typeof header !== "object" || header === null || header instanceof Map || Array.isArray(header)) {
      throw framesError(`${key} sub-header at frame ${String(offset)} is not a map`);
    }
    const h = header as Record<string, unknown>;
    const n = h["num-sub-frames"];
    const first = (offset as number) + 1;
    if (!isCount(n) || first + n > frames.length) {
      throw framesError(`${key} at frame ${String(offset)} claims ${String(n)} sub-frames; the message has ${frames.length - first} after it`);
    }
    return [h, frames.slice(first, first + n)];
  };
  const objectHook = (obj: Record<string, unknown>): unknown => {
    if ("__Serialized__" in obj) {
      const [header, sub] = subFrames(obj, "__Serialized__");
      return keepOpaque ? new Serialized(header, sub) : deserialize(header, sub, options);
    }
    if ("__Pickled__" in obj) {
      const [header, sub] = subFrames(obj, "__Pickled__");
      if (keepOpaque) return new Pickled(header, sub);
      const pickled = header["pickled-obj"];
      if (!(pickled instanceof Uint8Array)) throw framesError(`__Pickled__ sub-header has no "pickled-obj" bytes`);
      // 2026 decompresses __Pickled__ buffers when the sub-header says so (MODERN-DELTA §3).
      try {
        return readPickle(pickled, { buffers: decompressFrames(header, sub, options) });
      } catch (err) {
        // A run_spec outside the data-only subset (a cloudpickled __main__ function) fails only
        // the task that carries it, never the whole batch it arrived in: keep it opaque.
        if (options.keepUnreadable && err instanceof PickleError) return new Pickled(header, sub);
        throw err;
      }
    }
    return userHook ? userHook(obj) : obj;
  };
  return decode(frames[0]!, { ...decodeOpts, objectHook });
}
