// numpy arrays in dask's "dask" serializer family (DASK-PROTOCOL-2022.12.md §4.5;
// distributed/protocol/numpy.py serialize_numpy_ndarray / deserialize_numpy_ndarray).
//
// Role: typed arrays <-> the numpy sub-header {dtype: [0, "<f8"], shape, strides, writeable
// [, broadcast_to]} plus one raw frame. Pure: no IO, no pickle; the only pickle involved is the
// constant class reference `numpy.ndarray` in `type-serialized`, hard-coded below.
//
// Shape in JS: a 1-D array whose dtype has its own JS typed array comes back as that typed array
// (Float64Array for "<f8", Int32Array for "<i4", BigInt64Array for "<i8", ...). Everything else
// comes back as an `NdArray {data, shape, dtype}`: N-d arrays, 0-d arrays, and dtypes without a
// JS type of their own (bool "|b1", complex "<c8"/"<c16" as interleaved floats, datetimes
// "<M8[ns]"/"<m8[s]" as BigInt64Array, "|u1" — because a bare Uint8Array means *bytes* in this
// codebase, so a uint8 numpy array must stay distinguishable to round-trip as numpy).
//
// Must not: execute or parse pickles (object arrays `pickle: true` and custom dtypes `[1, <pickle>]`
// are reported as unsupported so the caller keeps the value opaque), or trust shape/strides (the
// largest byte offset they reach is checked against the frame before any element is read).
// Byte order: the host is assumed little-endian (every JS engine we target); ">" dtypes are
// byte-swapped on the way in and reported with "<".
import { ProtocolError } from "../errors.ts";

/** `pickle.dumps(numpy.ndarray)` as Python 3.11 writes it (vec:0059 `type-serialized`). */
export const NDARRAY_TYPE_PICKLE: Uint8Array = Uint8Array.from(
  hex("80059515000000000000008c056e756d7079948c076e6461727261799493942e"),
);

function hex(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 2) out.push(parseInt(s.slice(i, i + 2), 16));
  return out;
}

type Float16Ctor = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => ArrayBufferView & { length: number };
// Float16Array is new (Node 24 has it; older engines do not): "<f2" is an NdArray of raw
// Uint16 bits where it is missing.
const Float16: Float16Ctor | undefined = (globalThis as { Float16Array?: Float16Ctor }).Float16Array;

/** Every typed array we map to a numpy dtype. */
export type NumericArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

type ArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  new (length: number): NumericArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** An N-d (or 0-d, or non-native-dtype) numpy array: C-order `data`, numpy `shape` and `dtype`. */
export class NdArray {
  readonly data: NumericArray;
  readonly shape: readonly number[];
  /** numpy dtype.str, e.g. "<f8", "|b1", "<c16", "<M8[ns]" */
  readonly dtype: string;
  constructor(data: NumericArray, shape: readonly number[], dtype?: string) {
    this.data = data;
    this.shape = shape;
    this.dtype = dtype ?? dtypeOf(data);
    const info = parseDtype(this.dtype);
    if (!info || info.lane !== data.BYTES_PER_ELEMENT) {
      throw new ProtocolError("DASK_ERR_NUMPY_DTYPE", `NdArray dtype ${this.dtype} cannot hold a ${Object.prototype.toString.call(data)}`);
    }
    // The element count a shape implies must match the data (complex counts two floats each).
    const n = shape.reduce((a, b) => a * b, 1) * (info.itemsize / info.lane);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || n !== data.length) {
      throw new ProtocolError("DASK_ERR_NUMPY_HEADER", `NdArray shape [${shape.join(", ")}] does not match ${data.length} elements of ${this.dtype}`);
    }
  }
}

/** numpy dtype.str of a typed array (Uint8Array and Uint8ClampedArray are "|u1"). */
export function dtypeOf(arr: ArrayBufferView): string {
  if (arr instanceof Float64Array) return "<f8";
  if (arr instanceof Float32Array) return "<f4";
  if (arr instanceof Int32Array) return "<i4";
  if (arr instanceof Uint32Array) return "<u4";
  if (arr instanceof BigInt64Array) return "<i8";
  if (arr instanceof BigUint64Array) return "<u8";
  if (arr instanceof Int16Array) return "<i2";
  if (arr instanceof Uint16Array) return "<u2";
  if (arr instanceof Int8Array) return "|i1";
  if (arr instanceof Uint8Array || arr instanceof Uint8ClampedArray) return "|u1";
  if (Float16 && arr instanceof Float16) return "<f2";
  throw new ProtocolError("DASK_ERR_NUMPY_DTYPE", `no numpy dtype for ${Object.prototype.toString.call(arr)}`);
}

interface DtypeInfo {
  /** element size in bytes (numpy itemsize) */
  itemsize: number;
  /** typed array holding the data; complex uses a float array of twice the length */
  ctor: ArrayCtor;
  /** bytes per element of ctor (== itemsize, or itemsize/2 for complex) */
  lane: number;
  /** dtype.str normalised to little-endian */
  little: string;
  bigEndian: boolean;
  /** true when a 1-D array of this dtype is returned as a bare typed array */
  native: boolean;
}

const KINDS: Record<string, Record<number, ArrayCtor>> = {
  i: { 1: Int8Array, 2: Int16Array, 4: Int32Array, 8: BigInt64Array },
  u: { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: BigUint64Array },
  f: { 2: (Float16 ?? Uint16Array) as unknown as ArrayCtor, 4: Float32Array, 8: Float64Array },
  c: { 8: Float32Array, 16: Float64Array },
  b: { 1: Uint8Array },
  M: { 8: BigInt64Array },
  m: { 8: BigInt64Array },
};

/** Parses a numpy dtype.str; undefined for dtypes we do not map (strings, records, objects). */
export function parseDtype(dtype: string): DtypeInfo | undefined {
  const m = /^([<>|=])([iufcbMm])(\d+)(\[[A-Za-z0-9]+\])?$/.exec(dtype);
  if (!m) return undefined;
  const [, order, kind, sizeText, unit] = m as unknown as [string, string, string, string, string | undefined];
  const itemsize = Number(sizeText);
  const ctor = KINDS[kind]?.[itemsize];
  if (!ctor) return undefined;
  // Units only belong to datetimes/timedeltas, and those need one.
  if ((kind === "M" || kind === "m") !== (unit !== undefined)) return undefined;
  const bigEndian = order === ">" && itemsize > 1;
  const little = itemsize === 1 ? `|${kind}1` : `<${kind}${itemsize}${unit ?? ""}`;
  const native = (kind === "i" || (kind === "u" && itemsize > 1) || (kind === "f" && (itemsize > 2 || Float16 !== undefined)));
  return { itemsize, ctor, lane: kind === "c" ? itemsize / 2 : itemsize, little, bigEndian, native };
}

/** The dask header (serializer "dask", type numpy.ndarray) and the one frame for an array. */
export function serializeNumpy(value: NumericArray | NdArray): { header: Record<string, unknown>; frames: Uint8Array[] } {
  const data = value instanceof NdArray ? value.data : value;
  const shape = value instanceof NdArray ? [...value.shape] : [value.length];
  const dtype = value instanceof NdArray ? value.dtype : dtypeOf(value);
  const info = parseDtype(dtype);
  if (!info) throw new ProtocolError("DASK_ERR_NUMPY_DTYPE", `cannot serialize numpy dtype ${dtype}`);
  // C-order strides in bytes: itemsize * product of the later dimensions.
  const strides = new Array<number>(shape.length);
  let acc = info.itemsize;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= shape[i]!;
  }
  return {
    header: {
      serializer: "dask",
      type: "numpy.ndarray",
      "type-serialized": NDARRAY_TYPE_PICKLE,
      "sub-header": { dtype: [0, info.little], shape, strides, writeable: [true] },
    },
    // A view, not a copy: the caller must not mutate the array until the frames are written.
    frames: [new Uint8Array(data.buffer, data.byteOffset, data.byteLength)],
  };
}

function intList(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((d) => Number.isSafeInteger(d))) {
    throw new ProtocolError("DASK_ERR_NUMPY_HEADER", `numpy sub-header ${what} is not a list of integers`);
  }
  return value as number[];
}

/**
 * The array a numpy sub-header + frames describe, or undefined when the header is of a kind we
 * do not read (object dtype, custom dtype, strings): the caller keeps the value opaque.
 * Throws a coded ProtocolError when the header is inconsistent with the frame.
 */
export function deserializeNumpy(subHeader: Record<string, unknown>, frames: readonly Uint8Array[]): NumericArray | NdArray | undefined {
  if (subHeader["pickle"]) return undefined; // object arrays are pickles
  const dt = subHeader["dtype"];
  if (!Array.isArray(dt) || dt.length !== 2 || dt[0] !== 0 || typeof dt[1] !== "string") return undefined; // [1, pickle]: custom dtype
  const info = parseDtype(dt[1]);
  if (!info) return undefined;
  if (frames.length !== 1) {
    throw new ProtocolError("DASK_ERR_NUMPY_HEADER", `a numpy array has exactly one frame, got ${frames.length}`);
  }
  const frame = frames[0]!;
  // Python reads `broadcast_to` (when present) as the shape, with the frame's strides (0 on
  // broadcast axes): numpy.py deserialize_numpy_ndarray.
  const shape = intList(subHeader["broadcast_to"] ?? subHeader["shape"], "shape");
  const strides = intList(subHeader["strides"], "strides");
  if (strides.length !== shape.length || shape.some((d) => d < 0) || strides.some((s) => s < 0)) {
    throw new ProtocolError("DASK_ERR_NUMPY_HEADER", `numpy shape [${shape.join(", ")}] and strides [${strides.join(", ")}] disagree`);
  }
  let count = 1;
  let maxOffset = 0;
  for (let i = 0; i < shape.length; i++) {
    count *= shape[i]!;
    if (shape[i]! > 0) maxOffset += (shape[i]! - 1) * strides[i]!;
  }
  if (!Number.isSafeInteger(count) || (count > 0 && maxOffset + info.itemsize > frame.length)) {
    throw new ProtocolError(
      "DASK_ERR_NUMPY_HEADER",
      `numpy shape [${shape.join(", ")}] with strides [${strides.join(", ")}] reaches past the ${frame.length}-byte frame`,
    );
  }
  const lanes = info.itemsize / info.lane;
  const byteLength = count * info.itemsize;
  let bytes: Uint8Array;
  if (isCContiguous(shape, strides, info.itemsize) && frame.byteOffset % info.lane === 0 && !info.bigEndian) {
    // Zero-copy fast path: the result shares memory with the frame.
    bytes = frame.subarray(0, byteLength);
  } else {
    bytes = gather(frame, shape, strides, info.itemsize, byteLength);
    if (info.bigEndian) swapLanes(bytes, info.lane);
  }
  const data = new info.ctor(bytes.buffer, bytes.byteOffset, count * lanes);
  if (shape.length === 1 && info.native) return data;
  return new NdArray(data, shape, info.little);
}

function isCContiguous(shape: readonly number[], strides: readonly number[], itemsize: number): boolean {
  let acc = itemsize;
  for (let i = shape.length - 1; i >= 0; i--) {
    // numpy ignores the stride of a length-1 axis when judging contiguity
    if (shape[i] !== 1 && strides[i] !== acc) return false;
    acc *= shape[i]!;
  }
  return true;
}

/** Copies a strided (Fortran-order, broadcast) array into a fresh C-order buffer. */
function gather(frame: Uint8Array, shape: readonly number[], strides: readonly number[], itemsize: number, byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  if (byteLength === 0) return out;
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let src = 0;
  for (let dst = 0; dst < byteLength; dst += itemsize) {
    out.set(frame.subarray(src, src + itemsize), dst);
    // odometer increment over the C-order index, keeping the source offset in step
    for (let axis = nd - 1; axis >= 0; axis--) {
      if (++idx[axis]! < shape[axis]!) {
        src += strides[axis]!;
        break;
      }
      src -= (shape[axis]! - 1) * strides[axis]!;
      idx[axis] = 0;
    }
  }
  return out;
}

function swapLanes(bytes: Uint8Array, lane: number): void {
  for (let i = 0; i < bytes.length; i += lane) bytes.subarray(i, i + lane).reverse();
}
