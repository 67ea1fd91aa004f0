// One canonical form for values read or written as pickles, shared by the pickle tests: it tags
// the types Python distinguishes and JS may not (tuple vs list, Map vs object, int vs float by
// bit pattern, bytes, numpy arrays by dtype/shape, task-spec nodes the way probe_modern.py's
// reader folds them), so two values compare equal exactly when Python would see the same value.
// test/interop/pickle-python.test.ts has its Python twin (CANON_PY).
import { NdArray, dtypeOf } from "../../src/protocol/numpy.ts";
import { AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode, dependencies } from "../../src/protocol/task-spec.ts";
import { isTuple } from "../../src/protocol/values.ts";

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The canonical form (see the header). */
export function canon(v: unknown): unknown {
  if (v === null || v === undefined) return ["N"];
  if (typeof v === "boolean") return ["b", v];
  if (typeof v === "bigint") return ["n", v.toString()];
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) return ["n", String(v)];
    return ["f", floatHex(v)];
  }
  if (typeof v === "string") return ["s", v];
  if (v instanceof Uint8Array && !(v instanceof NdArray)) return ["y", hexOf(v)];
  if (v instanceof NdArray || ArrayBuffer.isView(v)) {
    const a = v instanceof NdArray ? v : null;
    const data = (a ? a.data : v) as unknown as ArrayLike<number | bigint>;
    const dtype = a ? a.dtype : dtypeOf(v as ArrayBufferView);
    const isFloat = dtype[1] === "f";
    const vals = Array.from(data, (x) => (isFloat ? floatHex(Number(x)) : String(x)));
    return ["nd", dtype, a ? [...a.shape] : [data.length], vals];
  }
  if (Array.isArray(v)) return [isTuple(v) ? "t" : "l", v.map(canon)];
  if (v instanceof Set) return ["S", [...v].map((x) => JSON.stringify(canon(x))).sort()];
  if (v instanceof Map) return ["d", [...v].map(([k, x]) => [canon(k), canon(x)])];
  if (v instanceof GlobalRef) return ["g", v.dotted];
  if (v instanceof TaskNode) {
    const deps = dependencies(v).map((k) => JSON.stringify(canon(k))).sort();
    return ["task", canon(v.key), canon(v.func), v.args.map(canon), [...v.kwargs].map(([k, x]) => [k, canon(x)]), deps];
  }
  // probe_modern's reader folds TaskRef and Alias into Ref(value key) and DataNode into its value.
  if (v instanceof TaskRefNode) return ["ref", canon(v.key)];
  if (v instanceof AliasNode) return ["ref", canon(v.target)];
  if (v instanceof DataNodeNode) return canon(v.value);
  if (v instanceof ContainerNode) return ["c", v.kind, v.items.map(canon)];
  return ["d", Object.entries(v as object).map(([k, x]) => [canon(k), canon(x)])];
}

export function floatHex(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString("hex");
}

