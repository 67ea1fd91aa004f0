// Values crossing between the worker and its task threads go by structured clone, which keeps
// typed arrays, Maps and Sets but drops class identity and non-enumerable marks: an NdArray would
// arrive as a plain {data, shape, dtype} object (and go back to Python as a dict), a tuple()-marked
// array as a plain list. `toClone` replaces those with tagged plain objects before postMessage;
// `fromClone` restores them on the other side. Pure: no IO; containers are copied only when
// something inside them needed a tag.
import { NdArray } from "../protocol/numpy.ts";
import type { NumericArray } from "../protocol/numpy.ts";
import { isTuple, tuple } from "../protocol/values.ts";

// "\u0000" cannot start a key of a value that came off the wire by accident in a way that matters:
// a user object with exactly this single key would be misread, which we accept.
const ND = "\u0000dask-wasm:ndarray";
const TUP = "\u0000dask-wasm:tuple";

function isPlain(v: object): v is Record<string, unknown> {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** The value with NdArrays and tuples replaced by tagged plain objects (or the value itself). */
export function toClone(v: unknown, depth = 0): unknown {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || depth > 256) return v;
  if (v instanceof NdArray) return { [ND]: [v.data, [...v.shape], v.dtype] };
  if (Array.isArray(v)) {
    const items = mapArray(v, (x) => toClone(x, depth + 1));
    return isTuple(v) ? { [TUP]: items } : items;
  }
  if (v instanceof Map) {
    let changed = false;
    const out = new Map();
    for (const [k, x] of v) {
      const k2 = toClone(k, depth + 1);
      const x2 = toClone(x, depth + 1);
      changed ||= k2 !== k || x2 !== x;
      out.set(k2, x2);
    }
    return changed ? out : v;
  }
  if (v instanceof Set) {
    const before = [...v];
    const items = before.map((x) => toClone(x, depth + 1));
    return items.some((x, i) => x !== before[i]) ? new Set(items) : v;
  }
  if (isPlain(v)) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const x2 = toClone(x, depth + 1);
      changed ||= x2 !== x;
      Object.defineProperty(out, k, { value: x2, enumerable: true, writable: true, configurable: true });
    }
    return changed ? out : v;
  }
  return v;
}

/** Inverse of toClone, applied to what postMessage delivered. */
export function fromClone(v: unknown, depth = 0): unknown {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || depth > 256) return v;
  if (Array.isArray(v)) return mapArray(v, (x) => fromClone(x, depth + 1));
  if (v instanceof Map) {
    const out = new Map();
    for (const [k, x] of v) out.set(fromClone(k, depth + 1), fromClone(x, depth + 1));
    return out;
  }
  if (v instanceof Set) return new Set([...v].map((x) => fromClone(x, depth + 1)));
  if (!isPlain(v)) return v;
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === ND) {
    const [data, shape, dtype] = v[ND] as [NumericArray, number[], string];
    return new NdArray(data, shape, dtype);
  }
  if (keys.length === 1 && keys[0] === TUP) return tuple(...(fromClone(v[TUP], depth + 1) as unknown[]));
  const out: Record<string, unknown> = {};
  for (const k of keys) Object.defineProperty(out, k, { value: fromClone(v[k], depth + 1), enumerable: true, writable: true, configurable: true });
  return out;
}

function mapArray(a: readonly unknown[], f: (x: unknown) => unknown): unknown[] {
  const out = new Array<unknown>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]);
  return out;
}
