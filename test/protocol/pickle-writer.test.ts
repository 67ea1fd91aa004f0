// Pickle writer: the exact bytes MODERN-DELTA.md §9 gives for the smallest graph pickles, the
// opcode subset (W), refusal of values outside it, and reader(writer(x)) == x for data values.
// (Byte-identity with probe_modern.py's writer and pickletools acceptance: test/interop.)
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PickleError } from "../../src/errors.ts";
import { readPickle } from "../../src/protocol/pickle-reader.ts";
import { writeGraphPickle, writePickle } from "../../src/protocol/pickle-writer.ts";
import { AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode, dependencies } from "../../src/protocol/task-spec.ts";
import { tuple } from "../../src/protocol/values.ts";
import type { Key } from "../../src/protocol/values.ts";
import { canon } from "../helpers/canon.ts";

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

test("MODERN-DELTA §9: {'b': Task('b', 'wasm:add', TaskRef('a'), 10)} is the documented 160 bytes", () => {
  const expected =
    "80048c0a6461736b2e5f657870728c11457870722e5f7265636f6e73747275637493288c0a6461736b" +
    "2e5f657870728c074c4c4745787072937d288c01628c0f6461736b2e5f7461736b5f737065638c0454" +
    "61736b93288c01628c087761736d3a6164648c0f6461736b2e5f7461736b5f737065638c075461736b" +
    "52656693288c016174524b0a7452758c10303132333435363738396162636465667d74522e";
  const graph = new Map([["b", new TaskNode("b", "wasm:add", [new TaskRefNode("a"), 10])]]);
  const bytes = writeGraphPickle(graph, "0123456789abcdef");
  assert.equal(bytes.length, 160);
  assert.equal(hexOf(bytes), expected);
  // A plain object graph gives the same bytes.
  assert.equal(hexOf(writeGraphPickle({ b: graph.get("b") }, "0123456789abcdef")), expected);
});

test("MODERN-DELTA §9: kwargs go through dask.utils.apply(Task, args, kwargs)", () => {
  const expected =
    "80048c0a6461736b2e7574696c738c056170706c7993288c0f6461736b2e5f7461736b5f737065638c04" +
    "5461736b93288c01638c0a7761736d3a7363616c658c0f6461736b2e5f7461736b5f737065638c07546173" +
    "6b52656693288c01627452747d288c06666163746f724b027574522e";
  const t = new TaskNode("c", "wasm:scale", [new TaskRefNode("b")], new Map([["factor", 2]]));
  assert.equal(hexOf(writePickle(t)), expected);
  // The reader normalises apply(...) back into the same TaskNode.
  const back = readPickle(writePickle(t)) as TaskNode;
  assert.ok(back instanceof TaskNode);
  assert.deepEqual([back.key, back.func, back.kwargs], ["c", "wasm:scale", new Map([["factor", 2]])]);
  assert.deepEqual(dependencies(back), ["b"]);
  // An untyped caller passing kwargs as a plain object gets the same bytes.
  const loose = new TaskNode("c", "wasm:scale", [new TaskRefNode("b")], { factor: 2 } as unknown as Map<string, unknown>);
  assert.equal(hexOf(writePickle(loose)), expected);
});

/** Opcodes of a pickle we wrote (walks only the opcodes subset (W) uses; argument sizes per opcode). */
function opcodes(b: Uint8Array): Set<number> {
  const seen = new Set<number>();
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 0; p < b.length; ) {
    const op = b[p++]!;
    seen.add(op);
    switch (op) {
      case 0x80: case 0x4b: p += 1; break;
      case 0x4a: p += 4; break;
      case 0x47: p += 8; break;
      case 0x8c: case 0x43: case 0x8a: p += 1 + b[p]!; break;
      case 0x58: case 0x42: case 0x8b: p += 4 + dv.getUint32(p, true); break;
      default: break;
    }
  }
  return seen;
}

// Subset (W) of MODERN-DELTA §10 (+ LONG4 for ints beyond 255 bytes).
const SUBSET_W = new Set([0x80, 0x93, 0x8c, 0x58, 0x28, 0x74, 0x29, 0x5d, 0x65, 0x7d, 0x75, 0x52, 0x4e, 0x88, 0x89, 0x4b, 0x4a, 0x8a, 0x47, 0x43, 0x42, 0x2e, 0x8b]);

test("every opcode written is in subset (W); no memo, FRAME, NEWOBJ, BUILD", () => {
  const graph = new Map<Key, unknown>([
    ["a", new TaskNode("a", new GlobalRef("builtins", "sum"), [[1, 2.5, -7, 2n ** 80n, "x".repeat(300), new Uint8Array(300)]])],
    [tuple<Key>("b", 0), new TaskNode(tuple<Key>("b", 0), "f", [new ContainerNode("dict", ["k", new TaskRefNode("a")])], new Map([["z", null]]))],
    ["c", new AliasNode("c", "a")],
    ["d", new DataNodeNode("d", new Map<unknown, unknown>([[1, true], [2, false]]))],
    ["e", new TaskNode("e", "g", [new ContainerNode("set", [new TaskRefNode("a")]), new ContainerNode("tuple", [1]), new Set([1])])],
  ]);
  const ops = opcodes(writeGraphPickle(graph, "tok"));
  for (const op of ops) assert.ok(SUBSET_W.has(op), `opcode 0x${op.toString(16)} outside subset (W)`);
  assert.ok(ops.has(0x8a) && ops.has(0x58) && ops.has(0x42) && ops.has(0x47));
});

test("ints choose BININT1 / BININT / LONG1 / LONG4 at Python's boundaries", () => {
  const cases: Array<[number | bigint, string]> = [
    [0, "4b00"], [255, "4bff"], [256, "4a00010000"], [-1, "4affffffff"],
    [2 ** 31 - 1, "4affffff7f"], [-(2 ** 31), "4a00000080"],
    [2 ** 31, "8a050000008000"], [-(2 ** 31) - 1, "8a05ffffff7fff"], [2n ** 63n, "8a09000000000000008000"], [-(2n ** 63n), "8a090000000000000080ff"],
  ];
  for (const [v, h] of cases) {
    assert.equal(hexOf(writePickle(v)).slice(4, -2), h, String(v));
    assert.equal(readPickle(writePickle(v)), typeof v === "bigint" && v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v);
  }
  const huge = 7n ** 1000n; // ~352 bytes: LONG4
  assert.equal(writePickle(huge)[2], 0x8b);
  assert.equal(readPickle(writePickle(huge)), huge);
  assert.equal(readPickle(writePickle(-huge)), -huge);
});

test("values outside the subset are refused with a coded error", () => {
  for (const v of [new Float64Array(2), () => 1, Symbol("s"), new Date(0), new (class X {})()]) {
    assert.throws(() => writePickle(v), (e: unknown) => e instanceof PickleError && e.code === "DASK_ERR_PICKLE_UNSUPPORTED", String(v));
  }
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assert.throws(() => writePickle(cyclic), (e: unknown) => e instanceof PickleError && e.code === "DASK_ERR_PICKLE_UNSUPPORTED");
});

test("lone surrogates round-trip (Python's surrogatepass)", () => {
  for (const s of ["\ud800", "a\udfffb", "😀\ud83d", "plain"]) assert.equal(readPickle(writePickle(s)), s);
});

const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.bigInt().filter((b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)),
  fc.double(),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
);
// Set elements and Map keys: hashable, and distinct under Python's 1 == 1.0 == True.
const hashable = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }));

const { value: dataValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("list"), tie("tuple"), tie("object"), tie("map"), tie("set")),
  list: fc.array(tie("value"), { maxLength: 5 }),
  tuple: fc.array(tie("value"), { maxLength: 5 }).map((a) => tuple(...a)),
  object: fc.dictionary(fc.string({ maxLength: 8 }), tie("value"), { maxKeys: 5 }),
  // At least one int key, so the reader returns a Map (all-str dicts come back as objects).
  map: fc.tuple(fc.integer(), fc.array(fc.tuple(hashable, tie("value")), { maxLength: 4 }), tie("value")).map(([k, rest, v]) => {
    const m = new Map<unknown, unknown>([[k, v]]);
    for (const [rk, rv] of rest) if (!m.has(rk)) m.set(rk, rv);
    return m;
  }),
  set: fc.uniqueArray(hashable, { maxLength: 5 }).map((a) => new Set(a)),
}));

test("fast-check: readPickle(writePickle(x)) equals x for data values", () => {
  fc.assert(
    fc.property(dataValue, (x) => {
      assert.deepEqual(canon(readPickle(writePickle(x))), canon(x));
    }),
    { numRuns: 1500 },
  );
});

test("fast-check: task-spec trees round-trip through the writer and reader", () => {
  const key = fc.oneof(fc.string({ maxLength: 6 }), fc.tuple(fc.string({ maxLength: 4 }), fc.nat(9)).map(([a, b]) => tuple<unknown>(a, b)));
  const { node } = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: "small" }, leaf, tie("ref"), tie("alias"), tie("task"), tie("container")),
    ref: key.map((k) => new TaskRefNode(k as string)),
    alias: fc.tuple(key, key).map(([k, t]) => new AliasNode(k as string, t as string)),
    task: fc.tuple(fc.option(key), fc.oneof(fc.string({ maxLength: 6 }), fc.constant(new GlobalRef("builtins", "sum"))), fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), tie("node"), { maxKeys: 2 }))
      .map(([k, f, a, kw]) => new TaskNode(k as string | null, f, a, new Map(Object.entries(kw)))),
    container: fc.tuple(fc.constantFrom("list", "tuple", "set", "dict" as const), fc.array(tie("node"), { maxLength: 4 }))
      .map(([kind, items]) => new ContainerNode(kind, kind === "dict" ? items.flatMap((x, i) => [`k${i}`, x]) : items)),
  }));
  const shape = (v: unknown): unknown => {
    if (v instanceof TaskNode) return ["task", canon(v.key), v.func instanceof GlobalRef ? v.func.dotted : canon(v.func), v.args.map(shape), [...v.kwargs].map(([k, x]) => [k, shape(x)])];
    if (v instanceof TaskRefNode) return ["ref", canon(v.key)];
    if (v instanceof AliasNode) return ["alias", canon(v.key), canon(v.target)];
    if (v instanceof ContainerNode) return ["c", v.kind, v.items.map(shape)];
    return canon(v);
  };
  fc.assert(
    fc.property(node, (n) => {
      const back = readPickle(writePickle(n));
      assert.deepEqual(shape(back), shape(n));
      assert.deepEqual(dependencies(back).map(canon), dependencies(n).map(canon));
    }),
    { numRuns: 800 },
  );
});
