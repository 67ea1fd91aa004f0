// encodeGraph2026 against the real bytes probe_modern.py sent to a dask 2026.7.1 scheduler
// (vectors-2026.7/nonpython-probe/012 and 032 update-graph): the same graphs, built the way the
// client builds them (dependencies as refs lowered by lowerArg), must give byte-identical
// expr_ser pickles and a whole message whose frames are byte-identical to the capture.
// Also: the dialect choice and the 2026 cancel / publish shapes, and encodeGraph2022.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  cancelOp2026, dialectFromVersions, encodeGraph2022, encodeGraph2026, lowerArg, publishOps2026, restartOp, spanMetadata2026,
  type WireTask2026,
} from "../../src/client/graph-wire.ts";
import { dumps, loads, Pickled, Serialized } from "../../src/protocol/serialize.ts";
import { ContainerNode, GlobalRef, TaskRefNode, dependencies } from "../../src/protocol/task-spec.ts";
import { tuple, type Key } from "../../src/protocol/values.ts";
import { PROTOCOL, VECTORS_2026, runPython, splitWireFrames } from "../helpers/env.ts";

const DIR = VECTORS_2026 + "nonpython-probe/";
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Stand-in for a Future: lowerArg's isRef recognises it, as the client does with Future. */
class Dep {
  readonly key: Key;
  constructor(key: Key) {
    this.key = key;
  }
}
const isRef = (v: unknown): Key | undefined => (v instanceof Dep ? v.key : undefined);
const t = (key: Key, fn: string | GlobalRef, args: unknown[], kwargs?: Record<string, unknown>): WireTask2026 => ({
  key, fn, args: args.map((a) => lowerArg(a, isRef)),
  kwargs: kwargs === undefined ? undefined : Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, lowerArg(v, isRef)])),
});

/** probe_modern.py run_probe's two graphs, in its order. */
const add = "probe:add";
const GRAPH1: WireTask2026[] = [
  t("probe-lit", add, [1, 2]),
  t("probe-sum", new GlobalRef("builtins", "sum"), [[1, 2, 3]]),
  t("probe-dep", add, [new Dep("probe-lit"), 10]),
  t("probe-nested", "probe:collect", [[new Dep("probe-lit"), 5], { x: new Dep("probe-sum"), y: [1, 2] }]),
  t("probe-kw", "probe:scale", [new Dep("probe-dep")], { factor: 2, offset: 0.5 }),
  t(tuple<Key>("probe-tuple", 1), new GlobalRef("_operator", "add"), [new Dep("probe-kw"), 1.5]),
  t("probe-bytes", "probe:concat", [new Uint8Array([0x61, 0x62]), "cd"]),
  t("probe-big", add, [2 ** 40, -(2 ** 33)]),
];
const GRAPH2: WireTask2026[] = [t("probe-later", add, [new Dep("probe-sum"), 100]), t("probe-fail", "probe:fail", [])];

/**
 * The token probe_modern drew (uuid4 hex) is the one string in the pickle we cannot derive. The
 * pickle ends `SHORT_BINUNICODE <32 bytes> EMPTY_DICT TUPLE REDUCE STOP` (MODERN-DELTA §9): cut it out.
 */
function capturedToken(pickle: Uint8Array): string {
  const end = pickle.length - 4;
  assert.equal(hexOf(pickle.subarray(end)), "7d74522e");
  assert.equal(hexOf(pickle.subarray(end - 34, end - 32)), "8c20");
  return Buffer.from(pickle.subarray(end - 32, end)).toString("latin1");
}

for (const [file, graph] of [["012-update-graph.to-scheduler.bin", GRAPH1], ["032-update-graph.to-scheduler.bin", GRAPH2]] as const) {
  test(`encodeGraph2026 reproduces ${file} byte for byte`, () => {
    const captured = splitWireFrames(new Uint8Array(readFileSync(DIR + file)));
    assert.equal(captured.length, 3);
    const token = capturedToken(captured[2]!);
    const msg = encodeGraph2026(graph, graph.map((x) => x.key), { token, fifoTimeout: 0 });
    const ser = msg["expr_ser"] as Serialized;
    assert.equal(hexOf(ser.frames[0]!), hexOf(captured[2]!), "expr_ser pickle");
    // The whole message as the comm writes it: [msgpack batch, sub-header, pickle].
    const frames = dumps([msg]);
    assert.equal(frames.length, 3);
    assert.equal(hexOf(frames[1]!), hexOf(captured[1]!), "sub-header");
    assert.equal(hexOf(frames[0]!), hexOf(captured[0]!), "message frame");
    // And it reads back to the same fields as the capture (not just the same bytes twice).
    const ours = loads(frames, { deserialize: false }) as Array<Record<string, unknown>>;
    const theirs = loads(captured, { deserialize: false }) as Array<Record<string, unknown>>;
    assert.deepEqual(Object.keys(ours[0]!), Object.keys(theirs[0]!));
    assert.deepEqual(ours[0]!["keys"], theirs[0]!["keys"]);
  });
}

test("encodeGraph2026 matches probe_modern.py's writer (run by Debian's Python) on tuple keys, containers, kwargs refs", () => {
  const x = tuple<Key>("x", 0);
  const graph: WireTask2026[] = [
    t(x, "wasm:load", [7]),
    t("y", "wasm:sum", [[new Dep(x), 1], { k: new Dep(x), n: null, f: true }, tuple<unknown>(new Dep(x), "s")], { total: new Dep(x), plain: [1, 2] }),
    t("z", new GlobalRef("builtins", "len"), [[1, 2, 3], new Uint8Array([0, 255]), -1.25, 2 ** 31, "\u00e9\u{1F600}"]),
  ];
  const token = "0123456789abcdef0123456789abcdef";
  const ours = (encodeGraph2026(graph, ["y", "z"], { token })["expr_ser"] as Serialized).frames[0]!;
  const code = String.raw`
import sys, types
sys.path.insert(0, ${JSON.stringify(PROTOCOL + "probes-modern")})
import probe_modern as pm
pm.uuid.uuid4 = lambda: types.SimpleNamespace(hex=${JSON.stringify(token)})
T = lambda *items: pm.Call(pm.G("dask._task_spec", "Tuple"), items)
x = ("x", 0)
dsk = {
    x: pm.task(x, "wasm:load", 7),
    "y": pm.task("y", "wasm:sum", pm.List(pm.ref(x), 1), pm.Dict({"k": pm.ref(x), "n": None, "f": True}),
                 T(pm.ref(x), "s"), total=pm.ref(x), plain=[1, 2]),
    "z": pm.task("z", pm.G("builtins", "len"), [1, 2, 3], b"\x00\xff", -1.25, 2**31, "\u00e9\U0001F600"),
}
sys.stdout.write(pm.graph_pickle(dsk).hex())
`;
  const theirs = runPython(code).toString("utf8");
  assert.ok(theirs.length > 200, "python wrote a pickle");
  assert.equal(hexOf(ours), theirs);
});

test("a different token changes only the token bytes", () => {
  const a = encodeGraph2026(GRAPH2, ["probe-later"], { token: "a".repeat(32) })["expr_ser"] as Serialized;
  const b = encodeGraph2026(GRAPH2, ["probe-later"], { token: "b".repeat(32) })["expr_ser"] as Serialized;
  assert.notEqual(hexOf(a.frames[0]!), hexOf(b.frames[0]!));
  assert.equal(hexOf(a.frames[0]!).replaceAll("61", "62"), hexOf(b.frames[0]!).replaceAll("61", "62"));
  assert.throws(() => encodeGraph2026(GRAPH2, [], { token: "" }), { code: "DASK_ERR_CONFIG" });
});

test("lowerArg: refs become TaskRef, containers only when they hold one", () => {
  assert.deepEqual(lowerArg([1, [2, 3]], isRef), [1, [2, 3]]);
  const l = lowerArg([1, new Dep("a")], isRef) as ContainerNode;
  assert.ok(l instanceof ContainerNode && l.kind === "list");
  assert.ok(l.items[1] instanceof TaskRefNode);
  const tup = lowerArg(tuple(new Dep("a")), isRef) as ContainerNode;
  assert.equal(tup.kind, "tuple");
  const d = lowerArg({ p: 1, q: { r: new Dep(tuple<Key>("k", 2)) } }, isRef) as ContainerNode;
  assert.equal(d.kind, "dict");
  assert.deepEqual(dependencies(d), [tuple<Key>("k", 2)]);
  assert.deepEqual(lowerArg({ p: [1] }, isRef), { p: [1] });
});

test("dialectFromVersions: distributed >= 2023 speaks 2026, anything else 2022", () => {
  assert.equal(dialectFromVersions({ packages: { distributed: "2026.7.1" } }), "2026");
  assert.equal(dialectFromVersions({ packages: { distributed: "2023.1.0" } }), "2026");
  assert.equal(dialectFromVersions({ packages: { distributed: "2022.12.1" } }), "2022");
  assert.equal(dialectFromVersions({ packages: {} }), "2022");
  assert.equal(dialectFromVersions(null), "2022");
});

test("2026 cancel-keys and publish shapes carry every required field", () => {
  assert.deepEqual(cancelOp2026([tuple<Key>("x", 1)], true), { op: "cancel-keys", keys: [tuple<Key>("x", 1)], force: true, reason: "cancelled by client", msg: null });
  const { flush, put } = publishOps2026("ds", ["a", "b"], [1, 2], false, "Client-1", "u1");
  assert.deepEqual(flush, { op: "publish_flush_batched_send", uid: "u1" });
  assert.deepEqual(put, { op: "publish_put", names: ["ds"], keys: [["a", "b"]], data: [[1, 2]], override: false, client: "Client-1", uid: "u1" });
});

test("restart: 2026 carries the keyword-only stimulus_id it requires; 2022's signature has none", () => {
  assert.deepEqual(restartOp("2026", 30, true, "client-restart-1"), { op: "restart", timeout: 30, wait_for_workers: true, stimulus_id: "client-restart-1" });
  assert.deepEqual(restartOp("2022", 5, false, "client-restart-1"), { op: "restart", timeout: 5, wait_for_workers: false });
});

test("span_metadata travels pickled, so Python reads 'collections' as a list (extend works), not a msgpack tuple", () => {
  const msg = encodeGraph2026([t("k", "dask-wasm:js:t.js#inc", [1])], ["k"], { token: "0123456789abcdef0123456789abcdef", spanMetadata: spanMetadata2026() });
  const frames = dumps([msg]);
  const [back] = loads(frames, { deserialize: false }) as Array<Record<string, unknown>>;
  const span = back!["span_metadata"];
  assert.ok(span instanceof Pickled, "an __Pickled__ placeholder");
  // Read by Python the way 2026's msgpack_decode_default reads __Pickled__ (pickle.loads of pickled-obj).
  const py = runPython("import pickle, sys; v = pickle.loads(sys.stdin.buffer.read()); v['collections'].extend([1]); print(type(v['collections']).__name__, v)", span.header["pickled-obj"] as Uint8Array);
  assert.equal(py.toString().trim(), "list {'collections': [1]}");
});

test("encodeGraph2022: plain tasks with per-key dependencies and options", () => {
  const msg = encodeGraph2022(
    [{ key: "b", fn: "dask-wasm:js:t.js#inc", args: ["a"], deps: ["a"] }, { key: "c", fn: "dask-wasm:js:t.js#f", args: [], kwargs: { k: 1 }, deps: [] }],
    ["b", "c"], "Client-1", { resources: { wasm: 1 }, workers: ["tcp://w:1"], allowOtherWorkers: true, retries: 2 },
  );
  assert.deepEqual(msg["tasks"], { b: { function: "dask-wasm:js:t.js#inc", args: ["a"] }, c: { function: "dask-wasm:js:t.js#f", args: [], kwargs: { k: 1 } } });
  assert.deepEqual(msg["dependencies"], { b: ["a"], c: [] });
  assert.deepEqual(msg["resources"], { b: { wasm: 1 }, c: { wasm: 1 } });
  assert.deepEqual(msg["loose_restrictions"], ["b", "c"]);
  assert.deepEqual(msg["retries"], { b: 2, c: 2 });
  assert.equal(msg["client"], "Client-1");
});
