// asCompleted (src/client/as-completed.ts) against fake futures whose settling order the test
// controls: yields follow settling order, not input order; each added entry exactly once;
// erred entries are yielded (not thrown) by the plain iterator; add() while iterating.
import { test } from "node:test";
import assert from "node:assert/strict";
import { asCompleted, AsCompleted } from "../../src/client/as-completed.ts";

/** A future-like whose result() the test resolves or rejects by hand. */
class FakeFuture {
  readonly key: string;
  #promise: Promise<unknown>;
  resolve!: (v: unknown) => void;
  reject!: (e: unknown) => void;
  calls = 0;
  constructor(key: string) {
    this.key = key;
    this.#promise = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // The fake itself must not report an unhandled rejection when nobody else listens.
    this.#promise.catch(() => {});
  }
  result(): Promise<unknown> {
    this.calls++;
    return this.#promise;
  }
}

/** A fixed permutation of 0..n-1 from a seeded LCG (no Math.random: reproducible failures). */
function permutation(n: number, seed: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

test("yields in settling order, each once, erred entries included", async () => {
  const fs = Array.from({ length: 50 }, (_, i) => new FakeFuture(`k-${i}`));
  const order = permutation(50, 7);
  const it = asCompleted(fs);
  assert.equal(it.count, 50);
  // Settle every 5th in the order as an error: as_completed yields those too.
  order.forEach((i, n) => (n % 5 === 0 ? fs[i]!.reject(new Error(`boom ${i}`)) : fs[i]!.resolve(i * 10)));
  const seen: string[] = [];
  for await (const f of it) {
    seen.push(f.key);
    const i = Number(f.key.slice(2));
    if (order.indexOf(i) % 5 === 0) await assert.rejects(f.result(), new RegExp(`boom ${i}$`));
    else assert.equal(await f.result(), i * 10);
  }
  assert.deepEqual(seen, order.map((i) => `k-${i}`));
  assert.equal(it.count, 0);
  assert.ok(it.isEmpty());
});

test("a consumer waiting before anything settles gets entries as they settle", async () => {
  const a = new FakeFuture("a");
  const b = new FakeFuture("b");
  const it = new AsCompleted([a, b]);
  const first = it.next();
  const second = it.next();
  const third = it.next();
  b.resolve(2);
  assert.equal((await first).value, b);
  a.reject(new Error("x"));
  assert.equal((await second).value, a);
  assert.equal((await third).done, true);
});

test("add() while iterating: the new entry is yielded too; adding after the end throws", async () => {
  const a = new FakeFuture("a");
  const it = asCompleted([a]);
  const extra = new FakeFuture("extra");
  a.resolve(1);
  const seen: string[] = [];
  for await (const f of it) {
    seen.push(f.key);
    if (f === a) {
      it.add(extra);
      extra.resolve(2);
    }
  }
  assert.deepEqual(seen, ["a", "extra"]);
  assert.throws(() => it.add(new FakeFuture("late")), TypeError);
});

test("the same future added twice is yielded twice (dask semantics)", async () => {
  const a = new FakeFuture("a");
  const it = asCompleted([a, a]);
  a.resolve(1);
  const seen = [];
  for await (const f of it) seen.push(f);
  assert.deepEqual(seen, [a, a]);
  assert.equal(a.calls, 2);
});

test("nextBatch returns everything already settled, at least one", async () => {
  const fs = ["a", "b", "c", "d"].map((k) => new FakeFuture(k));
  const it = asCompleted(fs);
  fs[2]!.resolve(0);
  fs[0]!.resolve(0);
  // Let both settlements run before asking.
  await fs[0]!.result();
  await fs[2]!.result();
  assert.deepEqual((await it.nextBatch()).map((f) => f.key), ["c", "a"]);
  const pending = it.nextBatch();
  fs[3]!.resolve(0);
  assert.deepEqual((await pending).map((f) => f.key), ["d"]);
  fs[1]!.resolve(0);
  assert.deepEqual((await it.nextBatch()).map((f) => f.key), ["b"]);
  assert.deepEqual(await it.nextBatch(), []);
});

test("withResults yields [future, value] and throws the first error it reaches", async () => {
  const a = new FakeFuture("a");
  const b = new FakeFuture("b");
  const c = new FakeFuture("c");
  const it = asCompleted([a, b, c]);
  a.resolve("A");
  await a.result();
  b.reject(new Error("b failed"));
  const got: unknown[] = [];
  await assert.rejects(async () => {
    for await (const [f, v] of it.withResults()) got.push([f.key, v]);
  }, /b failed/);
  assert.deepEqual(got, [["a", "A"]]);
  c.resolve("C");
});

test("break ends the iterator: queued waiters finish, pending entries are dropped", async () => {
  const fs = ["a", "b", "c"].map((k) => new FakeFuture(k));
  const it = asCompleted(fs);
  fs[1]!.resolve(1);
  for await (const f of it) {
    assert.equal(f.key, "b");
    break;
  }
  fs[0]!.resolve(0);
  fs[2]!.resolve(2);
  assert.equal((await it.next()).done, true);
});

test("onSettled sees every entry before it is yielded, and a throwing observer loses nothing", async () => {
  const fs = Array.from({ length: 10 }, (_, i) => new FakeFuture(String(i)));
  const observed: string[] = [];
  const it = asCompleted(fs, {
    onSettled: (f) => {
      observed.push(f.key);
      throw new Error("observer failure");
    },
  });
  fs.forEach((f, i) => (i < 3 ? f.reject(new Error("e")) : f.resolve(i)));
  const yielded: string[] = [];
  for await (const f of it) {
    assert.ok(observed.includes(f.key), `${f.key} yielded before onSettled saw it`);
    yielded.push(f.key);
  }
  assert.equal(yielded.length, 10);
  assert.deepEqual([...observed].sort(), [...yielded].sort());
});

test("a client future is awaited with client.waitKey: iterating fetches no values", async () => {
  // A FutureHost-shaped client: waitKey settles when the test says; result() must not be called.
  const gates = new Map<string, () => void>();
  const waited: string[] = [];
  const client = {
    waitKey(key: string): Promise<string> {
      waited.push(key);
      return new Promise((res) => gates.set(key, () => res("finished")));
    },
  };
  const fs = ["x", "y", "z"].map((key) => {
    let fetched = 0;
    return {
      key,
      client,
      get fetched() {
        return fetched;
      },
      result(): Promise<unknown> {
        fetched++;
        return Promise.resolve(key.toUpperCase());
      },
    };
  });
  const it = asCompleted(fs);
  assert.deepEqual(waited, ["x", "y", "z"]);
  gates.get("z")!();
  gates.get("x")!();
  gates.get("y")!();
  const seen: string[] = [];
  for await (const f of it) seen.push(f.key);
  assert.deepEqual(seen, ["z", "x", "y"]);
  assert.deepEqual(fs.map((f) => f.fetched), [0, 0, 0]);
  // withResults fetches each value as it yields it.
  const it2 = asCompleted(fs);
  for (const k of ["y", "z", "x"]) gates.get(k)!();
  const pairs: unknown[] = [];
  for await (const [f, v] of it2.withResults()) pairs.push([f.key, v]);
  assert.deepEqual(pairs, [["y", "Y"], ["z", "Z"], ["x", "X"]]);
  assert.deepEqual(fs.map((f) => f.fetched), [1, 1, 1]);
});
