// clone.ts: NdArrays and tuple marks survive the hop to a task thread and back, through the real
// structuredClone and through a real Executor thread (examples/tasks.js `echo`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromClone, toClone } from "../../src/worker/clone.ts";
import { Executor } from "../../src/worker/executor.ts";
import { NdArray } from "../../src/protocol/numpy.ts";
import { isTuple, tuple } from "../../src/protocol/values.ts";
import { REPO } from "../helpers/env.ts";

function check(back: unknown): void {
  const v = back as { nd: NdArray; t: unknown[]; m: Map<unknown, unknown>; s: Set<unknown>; plain: unknown[] };
  assert.ok(v.nd instanceof NdArray, "NdArray keeps its class");
  assert.deepEqual([...v.nd.shape], [2, 2]);
  assert.equal(v.nd.dtype, "|u1");
  assert.deepEqual([...v.nd.data], [1, 2, 3, 4]);
  assert.ok(isTuple(v.t), "tuple keeps its mark");
  assert.ok(isTuple(v.t[1]), "nested tuple keeps its mark");
  assert.ok(!isTuple(v.plain), "a list stays a list");
  const [[k, mv]] = [...v.m];
  assert.ok(isTuple(k), "tuple map key");
  assert.ok(mv instanceof NdArray);
  assert.deepEqual([...v.s], ["a", 1]);
}

function sample(): unknown {
  const nd = new NdArray(Uint8Array.from([1, 2, 3, 4]), [2, 2], "|u1");
  return { nd, t: tuple<unknown>(1, tuple(2, 3)), m: new Map<unknown, unknown>([[tuple<unknown>("x", 0), nd]]), s: new Set(["a", 1]), plain: [1, [2]] };
}

test("toClone/fromClone through structuredClone keep NdArray and tuples", () => {
  check(fromClone(structuredClone(toClone(sample()))));
});

test("values without NdArrays or tuples pass through unchanged", () => {
  const o = { a: 1, b: "x", c: Float64Array.from([1]) };
  assert.equal(toClone(o), o);
  assert.deepEqual(fromClone(structuredClone(toClone(o))), o);
});

test("an NdArray argument comes back from a task thread as an NdArray", async () => {
  const ex = new Executor({ nthreads: 1, modules: [REPO + "examples/tasks.js"], allowSource: false });
  try {
    await ex.start();
    const out = await ex.run({ key: "echo-1", fn: { kind: "js", ref: "tasks.js#echo" }, args: [sample()], kwargs: {} });
    assert.equal(out.status, "ok", JSON.stringify(out));
    if (out.status === "ok") check(out.value);
  } finally {
    await ex.close();
  }
});
