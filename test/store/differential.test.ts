// Differential property test: random operation sequences applied to ByteStore (Wasm index) and
// MapStore (TS twin index) must give identical results, stats, LRU order and spill decisions
// (the exact sequence of hook calls), and every value read back must equal the last value put
// for that key in a plain reference Map. Hooks fail on demand so that the "nothing lost" rule
// is exercised inside the same sequences.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ByteStore, MapStore, type SpillHook } from "../../src/store/byte-store.ts";
import { StoreError } from "../../src/errors.ts";

/** In-memory hook recording every call; `failing` makes the next calls throw. */
class RecordingHook implements SpillHook {
  readonly files = new Map<string, Uint8Array[]>();
  readonly log: string[] = [];
  failing = false;
  write(key: string, frames: readonly Uint8Array[]): void {
    this.log.push(`write ${key}`);
    if (this.failing) throw new Error("disk full");
    this.files.set(key, frames.map((f) => f.slice()));
  }
  read(key: string): Uint8Array[] {
    this.log.push(`read ${key}`);
    if (this.failing) throw new Error("io error");
    const f = this.files.get(key);
    if (!f) throw new Error(`hook has no ${key}`);
    return f.map((x) => x.slice());
  }
  remove(key: string): void {
    this.log.push(`remove ${key}`);
    if (this.failing) throw new Error("io error");
    if (!this.files.delete(key)) throw new Error(`hook has no ${key}`);
  }
}

// Keys: short ASCII, dask-like tuple strings, non-ASCII, and long ones (arena growth/compaction).
const KEY_POOL = [
  "a", "b", "x-1", "('sum', 0)", "('sum', 1)", "inc-0123456789abcdef0123456789abcdef", "ключ", "🔑-key", "",
  "long-" + "z".repeat(300), "long-" + "y".repeat(5000),
  // U+FFFD and lone surrogates: the latter encode to U+FFFD's bytes, and must not alias it.
  "a\uFFFD", "a\uD800", "a\uDC00",
];
const key = fc.oneof(fc.constantFrom(...KEY_POOL), fc.integer({ min: 0, max: 20 }).map((i) => `k${i}`));
const frames = fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 0, maxLength: 3 });

type Op =
  | { op: "put"; key: string; sizes: number[]; seed: number }
  | { op: "get" | "peek" | "delete" | "has" | "nbytes"; key: string }
  | { op: "fail"; on: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("put" as const), key, sizes: frames, seed: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("get" as const), key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("peek" as const, "delete" as const, "has" as const, "nbytes" as const), key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("fail" as const), on: fc.boolean() }) },
);

function makeFrames(sizes: number[], seed: number): Uint8Array[] {
  return sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (seed + 31 * i + j) & 255));
}

function outcome(fn: () => unknown): unknown {
  try {
    const r = fn();
    if (r && typeof r === "object" && "frames" in r) {
      const v = r as { frames: Uint8Array[]; header: unknown };
      return { frames: v.frames.map((f) => Array.from(f)), header: v.header };
    }
    return r;
  } catch (err) {
    assert.ok(err instanceof StoreError, `only coded StoreErrors escape: ${String(err)}`);
    return { error: err.code };
  }
}

test("ByteStore (wasm) and MapStore (js) agree on random op sequences, and lose nothing", () => {
  // Which paths the generated sequences reached; asserted below so the property cannot pass
  // vacuously (e.g. if limits were too high for anything to spill).
  const seen = { spills: 0, unspills: 0, spillErrors: 0, heavy: 0 };
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 1, maxLength: 120 }),
      fc.integer({ min: 0, max: 2000 }),
      fc.constantFrom(0.3, 0.6, 1),
      (ops, limit, target) => {
        const hw = new RecordingHook();
        const hj = new RecordingHook();
        const w = new ByteStore({ backend: "wasm", memoryLimit: limit, target, spill: hw });
        const j = new MapStore({ memoryLimit: limit, target, spill: hj });
        assert.equal(w.backend, "wasm");
        assert.equal(j.backend, "js");
        const ref = new Map<string, number[][]>();
        for (const o of ops) {
          if (o.op === "fail") {
            hw.failing = hj.failing = o.on;
            continue;
          }
          const run = (s: ByteStore): unknown =>
            outcome(() => {
              switch (o.op) {
                case "put": return s.put(o.key, makeFrames(o.sizes, o.seed), { seed: o.seed });
                case "get": return s.get(o.key);
                case "peek": return s.peek(o.key);
                case "delete": return s.delete(o.key);
                case "has": return s.has(o.key);
                case "nbytes": return s.nbytes(o.key);
              }
            });
          const rw = run(w);
          const rj = run(j);
          assert.deepEqual(rw, rj, `${o.op} ${o.key}`);
          // Reference: the store must hold exactly what was put last, spill failures or not.
          const refused = typeof rw === "object" && rw !== null && (rw as { error?: string }).error === "DASK_ERR_STORE_KEY";
          if (o.op === "put" && !refused) ref.set(o.key, makeFrames(o.sizes, o.seed).map((f) => Array.from(f)));
          if (o.op === "delete") ref.delete(o.key);
          if ((o.op === "get" || o.op === "peek") && !(rw && typeof rw === "object" && "error" in rw)) {
            const want = ref.get(o.key);
            assert.deepEqual(rw === undefined ? undefined : (rw as { frames: number[][] }).frames, want, `value of ${o.key}`);
          }
          if (o.op === "nbytes") assert.equal(rw, ref.has(o.key) ? ref.get(o.key)!.reduce((a, f) => a + f.length, 0) : undefined);
          if (o.op === "has") assert.equal(rw, ref.has(o.key));
          const sw = w.stats();
          assert.deepEqual({ ...sw, indexBytes: 0 }, j.stats());
          assert.deepEqual(w.lruKeys(), j.lruKeys());
        }
        assert.deepEqual(hw.log, hj.log, "identical spill decisions");
        assert.deepEqual([...w.keys()].sort(), [...ref.keys()].sort());
        assert.equal(w.size, ref.size);
        // Totals are exact: every key is either in memory or spilled.
        const total = [...ref.values()].reduce((a, fs) => a + fs.reduce((b, f) => b + f.length, 0), 0);
        const st = w.stats();
        assert.equal(st.memoryBytes + st.spilledBytes, total);
        // The hook holds exactly the spilled keys.
        const spilled = [...ref.keys()].filter((k) => w.isSpilled(k)).sort();
        assert.equal(spilled.length, st.spilledCount);
        hw.failing = hj.failing = false;
        for (const k of spilled) assert.ok(hw.files.has(k), `spilled ${k} is in the hook`);
        // Drain both with failures off: every value comes back byte-identical, and the unspill
        // (and re-spill) decisions this triggers agree too.
        for (const [k, want] of ref) {
          assert.deepEqual(w.get(k)!.frames.map((f) => Array.from(f)), want);
          assert.deepEqual(j.get(k)!.frames.map((f) => Array.from(f)), want);
        }
        assert.deepEqual({ ...w.stats(), indexBytes: 0 }, j.stats());
        assert.deepEqual(hw.log, hj.log, "identical spill decisions while draining");
        const end = w.stats();
        seen.spills += end.spills > 0 ? 1 : 0;
        seen.unspills += end.unspills > 0 ? 1 : 0;
        seen.spillErrors += end.spillErrors > 0 ? 1 : 0;
        seen.heavy += spilled.some((k) => w.nbytes(k)! > st.targetBytes) ? 1 : 0;
      },
    ),
    { numRuns: 300 },
  );
  console.log(`runs (of 300) that reached each path: ${JSON.stringify(seen)}`);
  for (const [what, runs] of Object.entries(seen)) assert.ok(runs >= 5, `only ${runs} runs reached ${what}`);
});

test("a churn of many distinct keys keeps both indexes in step and the Wasm index bounded", () => {
  const w = new ByteStore({ backend: "wasm" });
  const j = new MapStore();
  let peakIndex = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 2000; i++) {
      const k = `round${round}-key-${i}-${"p".repeat(i % 50)}`;
      const f = [new Uint8Array(i % 7)];
      w.put(k, f);
      j.put(k, f);
    }
    assert.deepEqual({ ...w.stats(), indexBytes: 0 }, j.stats());
    for (let i = 0; i < 2000; i += 2) {
      const k = `round${round}-key-${i}-${"p".repeat(i % 50)}`;
      assert.equal(w.delete(k), true);
      assert.equal(j.delete(k), true);
    }
    for (let i = 1; i < 2000; i += 2) {
      const k = `round${round}-key-${i}-${"p".repeat(i % 50)}`;
      assert.equal(w.nbytes(k), i % 7);
      w.delete(k);
      j.delete(k);
    }
    assert.equal(w.size, 0);
    if (round === 1) peakIndex = w.stats().indexBytes;
    // Freed slots and key bytes are reused: after the first rounds the index stops growing.
    if (round > 1) assert.equal(w.stats().indexBytes, peakIndex, `round ${round}`);
  }
});
