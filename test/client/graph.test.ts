// The graph API: token-derived keys (identical nodes share one), graphs with every node once,
// the wire form for a Client, and compute/run on the single-machine schedulers and on a client.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { compute, delayed, Delayed, isDelayed, run, toGraph, toGraphSpec } from "../../src/client/graph.ts";
import type { FutureLike, GraphClient, GraphSpec } from "../../src/client/graph.ts";
import { getSync } from "../../src/client/local-scheduler.ts";
import { taskKey } from "../../src/tokens.ts";
import { isTuple, tuple } from "../../src/protocol/values.ts";

const FIXTURE = fileURLToPath(new URL("./local-scheduler-tasks.js", import.meta.url));
const T = "local-scheduler-tasks.js#";
const add = delayed(T + "add");
const inc = delayed(T + "inc");
const mul = delayed(T + "mul");

/** a = 1 + 2; x = a + 3; y = a + 1; result = x * y (built twice on purpose: the nodes must coincide). */
function classic(): { a: Delayed; x: Delayed; y: Delayed; result: Delayed } {
  const x = add(add(1, 2), 3);
  const y = inc(add(1, 2));
  return { a: add(1, 2), x, y, result: mul(x, y) };
}

test("a key is the token of (reference, args with dependency keys, kwargs)", () => {
  const a = add(1, 2);
  assert.equal(a.key, taskKey(T + "add", [1, 2]));
  assert.match(a.key, /^add-[0-9a-f]{32}$/);
  const x = add(a, 3);
  // The dependency appears as its key string, the form the dask wire uses.
  assert.deepEqual(x.args, [a.key, 3]);
  assert.equal(x.key, taskKey(T + "add", [a.key, 3]));
  assert.deepEqual(x.deps.map((d) => d.key), [a.key]);
  const k = delayed(T + "withKw").kw({ sep: a }, 1);
  assert.deepEqual(k.kwargs, { sep: a.key });
  assert.deepEqual(k.deps, [a]);
  assert.notEqual(k.key, delayed(T + "withKw")(1).key);
});

test("identical nodes share a key; different ones do not", () => {
  assert.equal(add(1, 2).key, add(1, 2).key);
  assert.notEqual(add(1, 2).key, add(2, 1).key);
  assert.notEqual(add(1, 2).key, mul(1, 2).key);
  // Deep structure, built independently, still coincides.
  assert.equal(classic().result.key, classic().result.key);
});

test("JS functions: the same function object shares keys, two distinct closures never do", () => {
  const make = (k: number) => (x: number) => x + k;
  const f = make(1);
  const g = make(2); // same source text, different captured value
  assert.equal(delayed(f)(1).key, delayed(f)(1).key);
  assert.notEqual(delayed(f)(1).key, delayed(g)(1).key);
  function named(): number {
    return 1;
  }
  assert.match(delayed(named)().key, /^named-[0-9a-f]{32}$/);
});

test("toGraph holds each node once, with its dependencies, and keys in item order", () => {
  const c = classic();
  const g = toGraph(c.result, c.a, c.result);
  assert.equal(g.tasks.size, 4);
  assert.deepEqual(g.keys, [c.result.key, c.a.key, c.result.key]);
  assert.deepEqual(g.tasks.get(c.result.key)!.deps, [c.x.key, c.y.key]);
  assert.deepEqual(g.tasks.get(c.x.key)!.deps, [c.a.key]);
  assert.deepEqual(g.tasks.get(c.y.key)!.deps, [c.a.key]);
  assert.deepEqual(g.tasks.get(c.a.key)!.deps, []);
  assert.deepEqual(c.result.graph().keys, [c.result.key]);
});

test("Delayed inside arrays, tuples, objects, Maps and Sets are dependencies", () => {
  const a = add(1, 2);
  const b = inc(5);
  const m = new Map([["k", b]]);
  const n = delayed(T + "echo")([a, { b }], tuple<unknown>(a, 1), m, new Set([a]));
  assert.deepEqual(n.deps.map((d) => d.key).sort(), [a.key, b.key].sort());
  assert.deepEqual(n.args[0], [a.key, { b: b.key }]);
  assert.ok(isTuple(n.args[1]));
  assert.equal((n.args[2] as Map<string, unknown>).get("k"), b.key);
  assert.deepEqual([...(n.args[3] as Set<unknown>)], [a.key]);
  assert.ok(isDelayed(n) && !isDelayed({ key: n.key }));
});

test("toGraphSpec: registered references pass; a JS function is a config error naming sync", () => {
  const c = classic();
  const spec = toGraphSpec({ ...toGraph(c.result), retries: 2, resources: { wasm: 1 } });
  assert.equal(spec.tasks.size, 4);
  assert.equal(spec.retries, 2);
  assert.deepEqual(spec.resources, { wasm: 1 });
  assert.equal(spec.tasks.get(c.a.key)!.fn, T + "add");
  assert.throws(() => toGraphSpec(toGraph(delayed((x: number) => x)(1))), { code: "DASK_ERR_CONFIG", message: /sync/ });
  assert.throws(() => delayed(""), { code: "DASK_ERR_CONFIG" });
  assert.throws(() => delayed(42 as unknown as string), { code: "DASK_ERR_CONFIG" });
});

for (const scheduler of ["sync", "threads", "processes"] as const) {
  test(`compute, ${scheduler}: the classic example gives 24; other items pass through`, async () => {
    const { result, a } = classic();
    const out = await compute(result, "plain", a, { scheduler, modules: [FIXTURE], numWorkers: 2 });
    assert.deepEqual(out, [24, "plain", 3]);
    assert.equal(await result.compute({ scheduler, modules: [FIXTURE], numWorkers: 2 }), 24);
  });
}

test("compute (sync) with JS functions, each shared node called once", async () => {
  const calls = new Map<string, number>();
  const count = (name: string, f: (...xs: number[]) => number) => {
    const g = (...xs: number[]): number => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return f(...xs);
    };
    Object.defineProperty(g, "name", { value: name });
    return delayed(g);
  };
  const jadd = count("add", (p, q) => p! + q!);
  const jinc = count("inc", (p) => p! + 1);
  const jmul = count("mul", (p, q) => p! * q!);
  const a = jadd(1, 2);
  const x = jadd(jadd(1, 2), 3);
  const r = jmul(x, jinc(a));
  const [v, w] = await compute(r, a);
  assert.equal(v, 24);
  assert.equal(w, 3);
  assert.deepEqual(Object.fromEntries(calls), { add: 2, inc: 1, mul: 1 });
});

test("compute with no Delayed returns the items; a last object is options only if all its fields are", async () => {
  assert.deepEqual(await compute(1, "a"), [1, "a"]);
  assert.deepEqual(await compute({ x: 1 }), [{ x: 1 }]);
  assert.deepEqual(await compute({}), [{}]);
  assert.deepEqual(await compute({ scheduler: "sync", x: 1 }), [{ scheduler: "sync", x: 1 }]);
  assert.deepEqual(await compute(add(1, 2), { modules: [FIXTURE] }), [3]);
});

test("run(graph) DaskExecutor-style: key -> value, retries from the options", async () => {
  const { result, x } = classic();
  const out = await run(toGraph(result, x), { scheduler: "threads", modules: [FIXTURE], numWorkers: 2 });
  assert.deepEqual(Object.fromEntries(out), { [result.key]: 24, [x.key]: 6 });
  await assert.rejects(run(toGraph(delayed(T + "fail")("no")), { modules: [FIXTURE] }), { name: "TypeError", message: "no" });
});

/**
 * A stand-in Client: records the GraphSpec it was given, computes it with the sync scheduler
 * (so the values are real) and hands out futures that count their releases.
 */
class RecordingClient implements GraphClient {
  specs: GraphSpec[] = [];
  released: string[] = [];
  submitGraph(spec: GraphSpec): Map<string, FutureLike> {
    this.specs.push(spec);
    const values = getSync(spec, { modules: [FIXTURE] });
    values.catch(() => {});
    const out = new Map<string, FutureLike>();
    for (const key of new Set(spec.keys)) {
      out.set(key, { result: async () => (await values).get(key), release: () => void this.released.push(key) });
    }
    return out;
  }
}

test("compute with a client: one submitGraph with the wire form, values, futures released", async () => {
  const client = new RecordingClient();
  const { result, a } = classic();
  const out = await compute(result, a, { client, resources: { wasm: 1 }, retries: 1 });
  assert.deepEqual(out, [24, 3]);
  assert.equal(client.specs.length, 1);
  const spec = client.specs[0]!;
  assert.equal(spec.tasks.size, 4);
  assert.deepEqual(spec.keys, [result.key, a.key]);
  assert.deepEqual(spec.resources, { wasm: 1 });
  assert.equal(spec.retries, 1);
  assert.deepEqual(client.released.sort(), [result.key, a.key].sort());
  // The client can also be given as the scheduler.
  assert.deepEqual(await compute(a, { scheduler: client }), [3]);
  // JS function objects never reach a client.
  await assert.rejects(compute(delayed((q: number) => q)(1), { client }), { code: "DASK_ERR_CONFIG" });
  assert.equal(client.specs.length, 2);
});

test("a failed task through a client rejects compute and still releases the futures", async () => {
  const client = new RecordingClient();
  const bad = delayed(T + "fail")("remote boom");
  await assert.rejects(compute(inc(bad), { client }), { message: "remote boom" });
  assert.deepEqual(client.released, [inc(bad).key]);
});

/** A writable that keeps what the bar printed (not a TTY: cli-progress prints lines). */
function sink(): { stream: NodeJS.WritableStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => chunks.join("") };
}

test("progress: compute draws a bar over the graph's tasks (local) or the futures (client); off by default", async () => {
  const { result } = classic();
  const s = sink();
  assert.deepEqual(await compute(result, { scheduler: "threads", modules: [FIXTURE], numWorkers: 2, progress: { enabled: true, stream: s.stream, label: "graph-test" } }), [24]);
  assert.match(s.text(), /graph-test .*4\/4/);
  const c = sink();
  assert.deepEqual(await compute(result, classic().a, { client: new RecordingClient(), progress: { enabled: true, stream: c.stream } }), [24, 3]);
  assert.match(c.text(), /2\/2/);
  const off = sink();
  await compute(result, { modules: [FIXTURE], progress: { enabled: false, stream: off.stream } });
  assert.equal(off.text(), "");
});
