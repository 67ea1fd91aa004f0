// run-spec parsing: compute-task messages -> TaskCall. Checked against (1) the real captured
// compute-task messages of Python tasks (vectors-2022.12 0022/0026), (2) messages built by the
// real distributed 2022.12.1 client code (`dumps_task` of dask_wasm references) with the answer
// computed by distributed's own `_deserialize` + `pack_data` (differential, no hard-coded
// answers), and (3) distributed's test_pack_data cases, ported. Pure except one Python call.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { FrameReader } from "../../src/protocol/frames.ts";
import { loads } from "../../src/protocol/serialize.ts";
import { AliasNode, ContainerNode, DataNodeNode, TaskNode, TaskRefNode } from "../../src/protocol/task-spec.ts";
import { isTuple, keyId, tuple } from "../../src/protocol/values.ts";
import { functionRef, packData, parseComputeTask, parseFunctionRef } from "../../src/worker/run-spec.ts";
import type { FunctionSpec } from "../../src/worker/run-spec.ts";
import { DaskError } from "../../src/errors.ts";
import { REPO, VECTORS_2022, runPython } from "../helpers/env.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DaskError, `a DaskError, got ${String(e)}`);
    return e.code;
  }
  assert.fail("expected a throw");
}

function captured(name: string): Record<string, unknown> {
  const r = new FrameReader();
  r.push(new Uint8Array(readFileSync(VECTORS_2022 + name)));
  const msgs = loads(r.next()!, { deserialize: true }) as Array<Record<string, unknown>>;
  return msgs[0]!;
}

describe("real captured Python tasks", () => {
  for (const name of ["0022_c01_scheduler-to-worker1_compute-task.bin", "0026_c02_scheduler-to-worker2_compute-task.bin"]) {
    test(`${name.slice(0, 4)} (a Python function) -> DASK_ERR_NOT_A_WASM_TASK naming the key`, () => {
      const msg = captured(name);
      assert.equal(msg.op, "compute-task");
      assert.ok(msg.function instanceof Uint8Array, "the capture carries a pickled function");
      const deps = new Map(Object.keys(msg.who_has as object).map((k) => [k, 1]));
      try {
        parseComputeTask(msg, deps);
        assert.fail("must refuse");
      } catch (e) {
        assert.ok(e instanceof DaskError);
        assert.equal(e.code, "DASK_ERR_NOT_A_WASM_TASK");
        assert.match(e.message, new RegExp(`task ${String(msg.key)} is a Python function`));
        assert.match(e.message, /resources/);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Differential against distributed 2022.12.1: the client's dumps_task builds the message fields,
// the Python worker's _deserialize + pack_data computes what the function would be called with.

/** Tagged JSON both sides produce: tuples, sets, dicts and bytes made explicit. */
type Tagged = unknown;

function tag(v: unknown): Tagged {
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString("hex") };
  if (isTuple(v)) return { tuple: v.map(tag) };
  if (Array.isArray(v)) return v.map(tag);
  if (v instanceof Set) return { set: [...v].map(tag).sort((a, b) => cmp(JSON.stringify(a), JSON.stringify(b))) };
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [tag(k), tag(x)]) };
  if (v !== null && typeof v === "object") return { dict: Object.entries(v).map(([k, x]) => [k, tag(x)]) };
  return v;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function untag(v: Tagged): unknown {
  if (Array.isArray(v)) return v.map(untag);
  if (v === null || typeof v !== "object") return v;
  const o = v as Record<string, unknown>;
  if (typeof o.bytes === "string") return new Uint8Array(Buffer.from(o.bytes, "hex"));
  if (Array.isArray(o.tuple)) return tuple(...o.tuple.map(untag));
  throw new Error(`unexpected tagged value ${JSON.stringify(v)}`);
}

const PY_CASES = String.raw`
import sys, json, pickle
sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "python")
import dask_wasm
from dask.utils import apply
from distributed.worker import dumps_task, _deserialize
from distributed.utils_comm import pack_data

def tag(v):
    if isinstance(v, bytes): return {"bytes": v.hex()}
    if isinstance(v, tuple): return {"tuple": [tag(x) for x in v]}
    if isinstance(v, list): return [tag(x) for x in v]
    if isinstance(v, (set, frozenset)): return {"set": sorted((tag(x) for x in v), key=json.dumps)}
    if isinstance(v, dict): return {"dict": [[tag(k), tag(x)] for k, x in v.items()]}
    return v

inc, add, echo, wadd = dask_wasm.js("tasks.js#inc"), dask_wasm.js("tasks.js#add"), dask_wasm.js("tasks.js#echo"), dask_wasm.wasm("add")
data = {"x": 10, "y": [1, 2.5], "('t', 0)": "tv", "mod": b"\0asm\1\0\0\0"}
cases = {
    "inc of a dependency": (inc, "x"),
    "add of a dependency and a literal": (add, "x", 5),
    "keys inside lists, tuples and dict values; dict keys and bytes kept": (echo, ["x", "y", "z", ("x", "q")], {"x": "x", "k": ["y"]}, b"x", "('t', 0)"),
    "sets": (echo, {"x", "q"}, frozenset(["y2"])),
    "kwargs through apply": (apply, echo, ("x",), {"k": "x", "m": ["y", {"n": "x"}], "__proto__": "x"}),
    "wasm module as first argument": (wadd, "mod", 1, 2.5),
    "unicode and large ints": (echo, "h\u00e9llo \U0001F600", 2**40, -7, None, True, 1.5),
}
out = {}
for name, task in cases.items():
    d = dumps_task(task)
    assert isinstance(d, dict), name
    fn, args, kwargs = _deserialize(d.get("function"), d.get("args"), d.get("kwargs"))
    out[name] = {
        "fields": {k: v.hex() for k, v in d.items()},
        "fn": fn if isinstance(fn, str) else repr(fn),
        "args": tag(pack_data(args, data, key_types=(bytes, str))),
        "kwargs": tag(pack_data(kwargs, data, key_types=(bytes, str))),
    }
out["$data"] = tag(data)
out["$protocol2"] = pickle.dumps(inc, protocol=2).hex()
print(json.dumps(out))
`;

describe("messages from distributed 2022.12.1's dumps_task, answers from its pack_data", () => {
  const py = JSON.parse(runPython(`import sys; sys.argv = ["-", ${JSON.stringify(REPO + "python")}]\n` + PY_CASES).toString()) as Record<string, unknown>;
  const data = py.$data as { dict: Array<[string, Tagged]> };
  const deps = new Map(data.dict.map(([k, v]) => [keyId(k), untag(v)]));
  const cases = Object.entries(py).filter(([k]) => !k.startsWith("$")) as Array<[string, { fields: Record<string, string>; fn: string; args: Tagged; kwargs: Tagged }]>;
  assert.ok(cases.length >= 7);

  for (const [name, c] of cases) {
    test(name, () => {
      const msg: Record<string, unknown> = { op: "compute-task", key: `k-${name.length}`, run_spec: null, kwargs: null };
      for (const [f, hex] of Object.entries(c.fields)) msg[f] = new Uint8Array(Buffer.from(hex, "hex"));
      const call = parseComputeTask(msg, deps);
      // Python's loads_function gives the tagged str; ours the parsed spec of the same str.
      assert.deepEqual(call.fn, parseFunctionRef(c.fn));
      assert.equal(functionRef(call.fn), c.fn);
      assert.deepEqual(tag(tuple(...call.args)), c.args);
      assert.deepEqual(tag(call.kwargs), c.kwargs);
    });
  }

  test("protocol-2 pickle of a reference (__builtin__.unicode) reads the same", () => {
    const call = parseComputeTask({ key: "p2", function: new Uint8Array(Buffer.from(py.$protocol2 as string, "hex")), args: null }, new Map());
    assert.deepEqual(call.fn, { kind: "js", ref: "tasks.js#inc" } satisfies FunctionSpec);
    assert.deepEqual(call.args, []);
  });

  test("kwargs key __proto__ stays an own property, the prototype is untouched", () => {
    const c = cases.find(([n]) => n.startsWith("kwargs"))![1];
    const msg: Record<string, unknown> = { key: "kw" };
    for (const [f, hex] of Object.entries(c.fields)) msg[f] = new Uint8Array(Buffer.from(hex, "hex"));
    const call = parseComputeTask(msg, deps);
    assert.equal(Object.getPrototypeOf(call.kwargs), Object.prototype);
    assert.ok(Object.hasOwn(call.kwargs, "__proto__"));
    assert.equal(Object.getOwnPropertyDescriptor(call.kwargs, "__proto__")!.value, 10);
  });
});

// ---------------------------------------------------------------------------------------------

describe("packData (distributed tests/test_utils_comm.py test_pack_data, ported)", () => {
  const data = new Map<string, unknown>([["x", 1]]);
  test("pack_data(('x', 'y'), data) == (1, 'y')", () => {
    const r = packData(tuple("x", "y"), data) as unknown[];
    assert.deepEqual([...r], [1, "y"]);
    assert.ok(isTuple(r), "a tuple stays a tuple");
  });
  test("pack_data({'a': 'x', 'b': 'y'}, data) == {'a': 1, 'b': 'y'}", () => {
    assert.deepEqual(packData({ a: "x", b: "y" }, data), { a: 1, b: "y" });
  });
  test("pack_data({'a': ['x'], 'b': 'y'}, data) == {'a': [1], 'b': 'y'}", () => {
    assert.deepEqual(packData({ a: ["x"], b: "y" }, data), { a: [1], b: "y" });
  });
  test("dict keys are never substituted (Map and object); bytes and typed arrays pass through", () => {
    const m = packData(new Map<unknown, unknown>([["x", "x"]]), data) as Map<unknown, unknown>;
    assert.deepEqual([...m], [["x", 1]]);
    const b = new Uint8Array([120]);
    assert.equal(packData(b, data), b);
    const f = new Float64Array(2);
    assert.equal(packData(f, data), f);
  });
  test("the input is not mutated (the pickle reader shares memoised objects)", () => {
    const inner = ["x"];
    const o = { a: inner, b: tuple(inner, inner) };
    const r = packData(o, data) as { a: unknown[] };
    assert.deepEqual(inner, ["x"]);
    assert.deepEqual(r.a, [1]);
  });
});

describe("other message shapes", () => {
  test("plain msgpack fields from a JS client: tagged str, array args, object kwargs", () => {
    const call = parseComputeTask({ key: "j", function: "dask-wasm:js:tasks.js#add", args: ["d", 2], kwargs: { scale: "d" } }, new Map([["d", 40]]));
    assert.deepEqual(call, { key: "j", fn: { kind: "js", ref: "tasks.js#add" }, args: [40, 2], kwargs: { scale: 40 } });
  });
  test("non-map run_spec: a task tuple (ref, *args) with dependency substitution", () => {
    const call = parseComputeTask({ key: "r", run_spec: ["dask-wasm:wasm:fib", "m", 7] }, new Map([["m", new Uint8Array([0])]]));
    assert.deepEqual(call.fn, { kind: "wasm", export: "fib" });
    assert.deepEqual(call.args, [new Uint8Array([0]), 7]);
  });
  test("non-map run_spec that is a literal or a Python pickle -> DASK_ERR_NOT_A_WASM_TASK", () => {
    assert.equal(codeOf(() => parseComputeTask({ key: "l", run_spec: 42 }, new Map())), "DASK_ERR_NOT_A_WASM_TASK");
    assert.equal(codeOf(() => parseComputeTask({ key: "l", run_spec: new Uint8Array([0x80, 5, 0x63]) }, new Map())), "DASK_ERR_NOT_A_WASM_TASK");
  });
  test("2026 run_spec Task: TaskRef/Alias/DataNode/containers resolved; inline sub-task refused", () => {
    const deps = new Map<string, unknown>([[keyId("a"), 1], [keyId(tuple<string | number>("b", 0)), 2]]);
    const node = new TaskNode("t", "dask-wasm:js:tasks.js#echo", [
      new TaskRefNode("a"),
      new ContainerNode("list", [new TaskRefNode(["b", 0]), new DataNodeNode(null, 3)]),
      new AliasNode("c", "a"),
    ], new Map([["k", new TaskRefNode("a")]]));
    const call = parseComputeTask({ key: "t", run_spec: node }, deps);
    assert.deepEqual(call.args, [1, [2, 3], 1]);
    assert.deepEqual(call.kwargs, { k: 1 });
    const nested = new TaskNode("u", "dask-wasm:js:tasks.js#echo", [new TaskNode(null, "dask-wasm:js:tasks.js#inc", [1])]);
    assert.equal(codeOf(() => parseComputeTask({ key: "u", run_spec: nested }, deps)), "DASK_ERR_TASK_SPEC");
  });
  test("malformed messages -> DASK_ERR_TASK_SPEC, unknown references -> DASK_ERR_NOT_A_WASM_TASK", () => {
    assert.equal(codeOf(() => parseComputeTask({ key: "n" }, new Map())), "DASK_ERR_TASK_SPEC");
    assert.equal(codeOf(() => parseComputeTask({ function: "dask-wasm:js:a#b" }, new Map())), "DASK_ERR_TASK_SPEC");
    assert.equal(codeOf(() => parseComputeTask({ key: "n", function: "dask-wasm:js:a#b", args: 5 }, new Map())), "DASK_ERR_TASK_SPEC");
    assert.equal(codeOf(() => parseComputeTask({ key: "n", function: "dask-wasm:js:a#b", kwargs: [1] }, new Map())), "DASK_ERR_TASK_SPEC");
    assert.equal(codeOf(() => parseComputeTask({ key: "n", function: "dask-wasm:python:x" }, new Map())), "DASK_ERR_NOT_A_WASM_TASK");
    assert.equal(codeOf(() => parseComputeTask({ key: "n", function: "inc" }, new Map())), "DASK_ERR_NOT_A_WASM_TASK");
  });
  test("parseFunctionRef / functionRef round trip every kind; refs keep ':' and '#'", () => {
    for (const fn of [
      { kind: "js", ref: "tasks.js#inc" },
      { kind: "wasm", export: "add" },
      { kind: "source", source: "(a, b) => ({ 'x:y': a + b })" },
    ] satisfies FunctionSpec[]) {
      assert.deepEqual(parseFunctionRef(functionRef(fn)), fn);
    }
    assert.equal(parseFunctionRef("dask-wasm:js:"), null);
    assert.equal(parseFunctionRef("dask-wasm:"), null);
    assert.equal(parseFunctionRef(7), null);
  });
});
