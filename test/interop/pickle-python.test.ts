// Pickle reader/writer against Debian's Python (3.11, numpy 1.24, tblib; dask 2022.12 only, so
// nothing with dask._task_spec is ever unpickled there):
//   * writer: byte-identical to probe_modern.py's PickleWriter for the same graphs, and accepted
//     by pickletools.dis;
//   * reader: Python's own pickle.dumps of data values (protocols 2-5), numpy arrays (in-band
//     BYTEARRAY8 and out-of-band NEXT_BUFFER), and exceptions (plain and tblib) read to what
//     Python says they are;
//   * reader: every run_spec-gallery pickle gives the same tree as probe_modern.py's PickleReader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PickleError } from "../../src/errors.ts";
import { NdArray } from "../../src/protocol/numpy.ts";
import { describeException, readPickle } from "../../src/protocol/pickle-reader.ts";
import { writeGraphPickle } from "../../src/protocol/pickle-writer.ts";
import {
  AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode,
} from "../../src/protocol/task-spec.ts";
import type { GraphNode } from "../../src/protocol/task-spec.ts";
import { tuple } from "../../src/protocol/values.ts";
import type { Key } from "../../src/protocol/values.ts";
import { PROTOCOL, runPython } from "../helpers/env.ts";
import { canon } from "../helpers/canon.ts";

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const CANON_PY = String.raw`
import json, math, struct, sys
sys.path.insert(0, ${JSON.stringify(PROTOCOL + "probes-modern")})
def fhex(x): return struct.pack(">d", x).hex()
def canon(v):
    from probe_modern import TaskSpec, Ref, Container, GRef
    if v is None: return ["N"]
    if isinstance(v, bool): return ["b", v]
    if isinstance(v, int): return ["n", str(v)]
    if isinstance(v, float):
        if v.is_integer() and abs(v) <= 2**53 - 1 and not (v == 0 and math.copysign(1, v) < 0):
            return ["n", str(int(v))]
        return ["f", fhex(v)]
    if isinstance(v, str): return ["s", v]
    if isinstance(v, (bytes, bytearray)): return ["y", bytes(v).hex()]
    if isinstance(v, tuple): return ["t", [canon(x) for x in v]]
    if isinstance(v, list): return ["l", [canon(x) for x in v]]
    if isinstance(v, (set, frozenset)): return ["S", sorted(json.dumps(canon(x), separators=(",", ":"), ensure_ascii=False) for x in v)]
    if isinstance(v, dict): return ["d", [[canon(k), canon(x)] for k, x in v.items()]]
    if isinstance(v, GRef): return ["g", v.dotted]
    if isinstance(v, TaskSpec):
        deps = sorted(json.dumps(canon(k), separators=(",", ":"), ensure_ascii=False) for k in v.deps)
        return ["task", canon(v.key), canon(v.func), [canon(a) for a in v.args], [[k, canon(x)] for k, x in v.kwargs.items()], deps]
    if isinstance(v, Ref): return ["ref", canon(v.key)]
    if isinstance(v, Container): return ["c", v.kind, [canon(x) for x in v.items]]
    try:
        import numpy as np
        if isinstance(v, np.ndarray):
            dt = v.dtype.newbyteorder("<") if v.dtype.byteorder == ">" else v.dtype
            vals = [fhex(float(x)) if v.dtype.kind == "f" else str(int(x)) for x in v.ravel(order="C").tolist()]
            return ["nd", dt.str, list(v.shape), vals]
    except ImportError:
        pass
    raise TypeError(repr(type(v)))
`;

function py(code: string, input?: unknown): unknown {
  const out = runPython(CANON_PY + code, input === undefined ? undefined : JSON.stringify(input));
  return JSON.parse(out.toString("utf8"));
}

// ---------------------------------------------------------------------------------------------
// Writer: the same graphs built on both sides.

const ref = (k: Key) => new TaskRefNode(k);
const task = (k: Key, f: unknown, args: unknown[], kw: Record<string, unknown> = {}) => new TaskNode(k, f, args, new Map(Object.entries(kw)));
const List = (...items: unknown[]) => new ContainerNode("list", items);
const Tuple = (...items: unknown[]) => new ContainerNode("tuple", items);
const SetC = (...items: unknown[]) => new ContainerNode("set", items);
const Dict = (d: Record<string, unknown>) => new ContainerNode("dict", Object.entries(d).flat());

const JS_GRAPHS: Record<string, [Map<Key, unknown>, string]> = {
  "delta-example": [new Map([["b", task("b", "wasm:add", [ref("a"), 10])]]), "0123456789abcdef"],
  "chain-kwargs": [new Map<Key, unknown>([
    ["x", task("x", "probe:add", [1, 2])],
    ["y", task("y", "probe:scale", [ref("x")], { factor: 2, offset: -1.5 })],
    ["z", task("z", new GlobalRef("builtins", "sum"), [List(ref("x"), ref("y"), 3)])],
  ]), "tok1"],
  "tuple-keys": [new Map<Key, unknown>([
    [tuple<Key>("t", 0), task(tuple<Key>("t", 0), "f", [new TextEncoder().encode("raw"), "é".repeat(200)])],
    [tuple<Key>("t", 1), task(tuple<Key>("t", 1), "g", [ref(tuple<Key>("t", 0)), null, true, false])],
  ]), "tok2"],
  "containers": [new Map<Key, unknown>([
    ["c", task("c", "collect", [List(ref("a"), Dict({ k: ref("b"), n: 5 }), Tuple(ref("a"), 1.25), SetC(ref("b"))), Dict({ deep: List(Tuple(ref("a"))) })])],
  ]), "tok3"],
  "literals": [new Map<Key, unknown>([
    ["l", task("l", "lit", [
      0, 255, 256, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2n ** 63n, -(2n ** 63n), 2n ** 70n, -(2n ** 100n),
      0.1, -2.5e300, Infinity, new Uint8Array(300).fill(0x78), "s".repeat(300), [1, [2, [3]]], { a: 1, b: [null] },
      tuple<unknown>(1, "two", new TextEncoder().encode("3")), tuple(),
    ])],
  ]), "tok4"],
  "alias-datanode": [new Map<Key, unknown>([
    ["w", new AliasNode("w", "z")],
    ["d", new DataNodeNode("d", [1, 2, 3])],
    ["u", task("u", "f", [ref("d")])],
  ]), "tok5"],
};

const PY_GRAPHS = String.raw`
from probe_modern import PickleWriter, G, Call, task, ref, List, Dict
TS = "dask._task_spec"
def Tuple(*items): return Call(G(TS, "Tuple"), items)
def Set(*items): return Call(G(TS, "Set"), items)
def Alias(k, t): return Call(G(TS, "Alias"), (k, t))
def DataNode(k, v): return Call(G(TS, "DataNode"), (k, v))
def gp(dsk, token):
    return PickleWriter().dumps(Call(G("dask._expr", "Expr._reconstruct"), (G("dask._expr", "LLGExpr"), dsk, token, {})))
graphs = {
    "delta-example": gp({"b": task("b", "wasm:add", ref("a"), 10)}, "0123456789abcdef"),
    "chain-kwargs": gp({"x": task("x", "probe:add", 1, 2),
                        "y": task("y", "probe:scale", ref("x"), factor=2, offset=-1.5),
                        "z": task("z", G("builtins", "sum"), List(ref("x"), ref("y"), 3))}, "tok1"),
    "tuple-keys": gp({("t", 0): task(("t", 0), "f", b"raw", "\u00e9" * 200),
                      ("t", 1): task(("t", 1), "g", ref(("t", 0)), None, True, False)}, "tok2"),
    "containers": gp({"c": task("c", "collect", List(ref("a"), Dict({"k": ref("b"), "n": 5}), Tuple(ref("a"), 1.25), Set(ref("b"))),
                                Dict({"deep": List(Tuple(ref("a")))}))}, "tok3"),
    "literals": gp({"l": task("l", "lit", 0, 255, 256, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**63, -2**63, 2**70, -2**100,
                              0.1, -2.5e300, float("inf"), b"x" * 300, "s" * 300, [1, [2, [3]]], {"a": 1, "b": [None]},
                              (1, "two", b"3"), ())}, "tok4"),
    "alias-datanode": gp({"w": Alias("w", "z"), "d": DataNode("d", [1, 2, 3]), "u": task("u", "f", ref("d"))}, "tok5"),
}
import io, pickletools
ours = json.load(sys.stdin)
out = {}
for name, b in graphs.items():
    mine = bytes.fromhex(ours[name])
    sink = io.StringIO()
    pickletools.dis(mine, out=sink)  # raises on anything malformed
    ops = sorted({op.name for op, _, _ in pickletools.genops(mine)})
    out[name] = {"probe": b.hex(), "ops": ops, "dis_lines": sink.getvalue().count("\n")}
print(json.dumps(out))
`;

test("writeGraphPickle is byte-identical to probe_modern.py's writer; pickletools accepts it", () => {
  const ours: Record<string, string> = {};
  for (const [name, [g, token]] of Object.entries(JS_GRAPHS)) ours[name] = hexOf(writeGraphPickle(g, token));
  const res = py(PY_GRAPHS, ours) as Record<string, { probe: string; ops: string[]; dis_lines: number }>;
  const allowed = new Set(["PROTO", "STACK_GLOBAL", "SHORT_BINUNICODE", "BINUNICODE", "MARK", "TUPLE", "EMPTY_TUPLE", "EMPTY_LIST",
    "APPENDS", "EMPTY_DICT", "SETITEMS", "REDUCE", "NONE", "NEWTRUE", "NEWFALSE", "BININT1", "BININT", "LONG1", "BINFLOAT",
    "SHORT_BINBYTES", "BINBYTES", "STOP"]);
  for (const name of Object.keys(JS_GRAPHS)) {
    assert.equal(ours[name], res[name]!.probe, name);
    for (const op of res[name]!.ops) assert.ok(allowed.has(op), `${name}: ${op} outside subset (W)`);
    assert.ok(res[name]!.dis_lines > 10);
  }
  // And our reader gives the graph back (LLGExpr is scheduler-side: read it opaquely).
  const back = readPickle(hex(ours["containers"]!), { opaqueGlobals: true }) as { args: unknown[] };
  const dsk = back.args[1] as Record<string, GraphNode>;
  assert.deepEqual(canon(dsk["c"]), canon(JS_GRAPHS["containers"]![0].get("c")));
});

// ---------------------------------------------------------------------------------------------
// Reader: Python's pickle.dumps of data values at every protocol.

test("Python pickle.dumps of data values (protocols 2-5) read to the same values", () => {
  const res = py(String.raw`
import pickle
shared = [1, "s"]
deep = 1
for _ in range(200):
    deep = [(deep,)]
values = {
    "atoms": [None, True, False, 0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**53, 2**64, -2**64 - 1, 10**40,
              0.5, -0.0, 1e300, float("inf"), float("-inf"), float("nan"), 2.0, 2.0**60, "\u00e9", "\U0001F600", "x" * 70000, "\ud800"],
    "containers": {"list": [1, [2, [3, []]]], "tuple": (1, (2,), ()), "dict": {"a": 1, "__proto__": {"polluted": 1}},
                   "tk": {("x", 1): "v", 2: "n"}, "set": {1, 2, 3}, "fs": frozenset({"a"}), "empty": [{}, set(), frozenset(), [], ()],
                   "shared": (shared, shared, [shared])},
    "deep": deep,
    "bytes": [b"", b"ab", bytes(range(256)), bytearray(b"xy"), b"z" * 70000],
}
out = []
for proto in (2, 3, 4, 5):
    for name, v in values.items():
        if name == "bytes" and proto < 3:
            continue  # protocol 2 pickles bytes as _codecs.encode(...) calls: not data
        out.append({"name": f"{name}@{proto}", "pickle": pickle.dumps(v, protocol=proto).hex(), "canon": canon(v)})
print(json.dumps(out))  # ASCII escapes: the lone surrogate cannot travel as UTF-8
`) as Array<{ name: string; pickle: string; canon: unknown }>;
  assert.equal(res.length, 15); // 4 groups x 4 protocols, minus bytes@2
  for (const r of res) assert.deepEqual(canon(readPickle(hex(r.pickle))), r.canon, r.name);
});

test("numpy arrays (numpy 1.24): in-band BYTEARRAY8 and out-of-band NEXT_BUFFER read as typed arrays / NdArray", () => {
  const res = py(String.raw`
import pickle, numpy as np
arrays = {
    "f8-1d": np.arange(5, dtype="f8") / 3, "f4-2d": (np.arange(6, dtype="f4") - 2.5).reshape(2, 3),
    "i8": np.array([-(2**62), 0, 2**62], dtype="i8"), "i4-3d": np.arange(24, dtype="i4").reshape(2, 3, 4) - 7,
    "i2": np.array([-300, 300], dtype="i2"), "u1": np.arange(7, dtype="u1"), "u2": np.array([65535, 1], dtype="u2"),
    "bool": np.array([True, False, True]), "big-endian": np.arange(4, dtype=">f8") + 0.25,
    "fortran": np.asfortranarray(np.arange(6, dtype="i8").reshape(2, 3)), "0-d": np.array(7.5), "empty": np.zeros((0, 3)),
}
out = []
for name, a in arrays.items():
    inband = pickle.dumps(a, protocol=5)
    bufs = []
    oob = pickle.dumps(a, protocol=5, buffer_callback=bufs.append)
    out.append({"name": name, "inband": inband.hex(), "oob": oob.hex(),
                "buffers": [bytes(b.raw()).hex() for b in bufs], "canon": canon(a)})
# Protocol 4 numpy goes through _reconstruct + BUILD (executing numpy): refused.
out.append({"name": "proto4", "inband": pickle.dumps(np.arange(3), protocol=4).hex()})
out.append({"name": "object", "inband": pickle.dumps(np.array([1, "a"], dtype=object), protocol=5).hex()})
print(json.dumps(out))
`) as Array<{ name: string; inband: string; oob?: string; buffers?: string[]; canon?: unknown }>;
  for (const r of res) {
    if (!r.canon) {
      assert.throws(() => readPickle(hex(r.inband)), (e: unknown) => e instanceof PickleError && e.code === "DASK_ERR_PICKLE_GLOBAL", r.name);
      continue;
    }
    const inband = readPickle(hex(r.inband));
    assert.deepEqual(canon(inband), r.canon, `${r.name} in-band`);
    const oob = readPickle(hex(r.oob!), { buffers: r.buffers!.map(hex) });
    assert.deepEqual(canon(oob), r.canon, `${r.name} out-of-band`);
    // 1-D arrays of dtypes with their own JS typed array come back bare (numpy.ts convention).
    if (["f8-1d", "i8", "i2", "u2"].includes(r.name)) assert.ok(!(inband instanceof NdArray) && ArrayBuffer.isView(inband), r.name);
  }
});

test("exception pickles (plain, protocols 2-5, and tblib as Python workers send them) describe as Python prints them", () => {
  const res = py(String.raw`
import pickle, tblib.pickling_support
tblib.pickling_support.install()
class AppError(Exception):
    pass
def expected(e):
    cls = type(e)
    s = str(e)
    name = f"{cls.__module__}.{cls.__qualname__}"
    return f"{name}: {s}" if s else name
excs = [ValueError("boom"), KeyError("k"), ZeroDivisionError("division by zero"), ValueError("a", 2), RuntimeError(),
        AppError("custom \u00e9"), TypeError("unsupported operand type(s) for +: 'int' and 'str'")]
out = []
for proto in (2, 3, 4, 5):
    for e in excs:
        out.append({"pickle": pickle.dumps(e, protocol=proto).hex(), "text": expected(e), "name": f"{e!r}@{proto}"})
try:
    1 / 0
except ZeroDivisionError as e:
    out.append({"pickle": pickle.dumps(e, protocol=5).hex(), "text": expected(e), "name": "raised+tblib"})
print(json.dumps(out, ensure_ascii=False))
`) as Array<{ pickle: string; text: string; name: string }>;
  assert.equal(res.length, 29);
  for (const r of res) assert.equal(describeException(hex(r.pickle)), r.text, r.name);
});

test("every run_spec-gallery pickle reads to the same tree as probe_modern.py's PickleReader", () => {
  const res = py(String.raw`
import os
from probe_modern import PickleReader, interpret
gdir = ${JSON.stringify(PROTOCOL + "vectors-2026.7/run_spec-gallery/")}
g = json.load(open(gdir + "gallery.json"))
out = {}
for name, v in g.items():
    if name in ("numpy_arg_oob", "main_function_cloudpickle"):
        continue  # the probe refuses both (numpy: see the numpy test above)
    pik = open(gdir + v["pickle_file"], "rb").read()
    out[name] = {"pickle": pik.hex(), "canon": canon(interpret(PickleReader(pik).load()))}
print(json.dumps(out, ensure_ascii=False))
`) as Record<string, { pickle: string; canon: unknown }>;
  assert.equal(Object.keys(res).length, 15);
  for (const [name, r] of Object.entries(res)) assert.deepEqual(canon(readPickle(hex(r.pickle))), r.canon, name);
});

