// The worker byte store (src/store/byte-store.ts): ByteStore on the Wasm index vs the same
// store on its TS twin index (MapStore) vs a bare JS Map holding the same frames (the floor:
// no nbytes, no LRU, no spill accounting). Workloads, 10,000 dask-like keys of 20-60 chars
// with one 1 KiB frame each:
//   - put + get + delete of every key (a task's result stored, read once by a peer, released);
//   - get-hit of keys already in the store (dependencies read by tasks);
//   - put + get + delete with a memory limit of half the data and an in-memory spill hook, so
//     half of the operations spill or unspill (index decisions + hook calls; no disk IO).
// Each timed iteration checks the bytes it read back. One op = one key.
import { check, measure, type Table } from "../harness.ts";
import { ByteStore, MapStore, type SpillHook } from "../../src/store/byte-store.ts";

const N = 10_000;

/** Deterministic keys: "('<name>-<hex>', i)" and "name-<hex>", 20-60 characters. */
function makeKeys(): string[] {
  const names = ["inc", "sum", "getitem", "from-array", "rechunk-merge", "dataframe-groupby-agg"];
  const keys: string[] = [];
  let x = 0x9e3779b9;
  for (let i = 0; i < N; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i) >>> 0;
    const hex = x.toString(16).padStart(8, "0").repeat(4);
    const name = names[i % names.length]!;
    const k = i % 2 === 0 ? `('${name}-${hex}', ${i})` : `${name}-${hex.slice(0, 8 + (i % 24))}`;
    keys.push(k.slice(0, 60));
  }
  return keys;
}

class MemoryHook implements SpillHook {
  #files = new Map<string, Uint8Array[]>();
  write(key: string, frames: readonly Uint8Array[]): void {
    this.#files.set(key, frames as Uint8Array[]);
  }
  read(key: string): Uint8Array[] {
    return this.#files.get(key)!;
  }
  remove(key: string): void {
    this.#files.delete(key);
  }
}

interface Subject {
  name: string;
  put(k: string, f: Uint8Array[]): void;
  get(k: string): Uint8Array[] | undefined;
  delete(k: string): void;
}

function storeSubject(name: string, s: ByteStore): Subject {
  return { name, put: (k, f) => s.put(k, f), get: (k) => s.get(k)?.frames, delete: (k) => void s.delete(k) };
}

function mapSubject(): Subject {
  const m = new Map<string, Uint8Array[]>();
  return { name: "bare JS Map", put: (k, f) => void m.set(k, f), get: (k) => m.get(k), delete: (k) => void m.delete(k) };
}

export function run(): Table[] {
  const keys = makeKeys();
  const values = keys.map((_, i) => [new Uint8Array(1024).fill(i & 255)]);
  const subjects = (limit?: number): Subject[] => [
    storeSubject("ByteStore (wasm index)", new ByteStore({ backend: "wasm", ...(limit ? { memoryLimit: limit, target: 1, spill: new MemoryHook() } : {}) })),
    storeSubject("MapStore (js index)", new MapStore(limit ? { memoryLimit: limit, target: 1, spill: new MemoryHook() } : {})),
    ...(limit ? [] : [mapSubject()]),
  ];

  const cycle = (s: Subject): number => {
    for (let i = 0; i < N; i++) s.put(keys[i]!, values[i]!);
    let sum = 0;
    for (let i = 0; i < N; i++) sum += s.get(keys[i]!)![0]![1000]!;
    for (let i = 0; i < N; i++) s.delete(keys[i]!);
    check(sum === values.reduce((a, v) => a + v[0]![1000]!, 0), `${s.name} read back what it stored`);
    return N;
  };
  const expected = values.reduce((a, v) => a + v[0]![7]!, 0);

  const putGetDelete: Table = {
    title: "byte store: put + get + delete, 10,000 keys × 1 KiB",
    baseline: "bare JS Map",
    caption: "one op = one key through put, get and delete; no memory limit",
    rows: subjects().map((s) => measure(s.name, () => cycle(s), { batches: 9 })),
  };

  const getHit: Table = {
    title: "byte store: get-hit, 10,000 keys present",
    baseline: "bare JS Map",
    caption: "one op = one get of a key in memory (bumps LRU in the stores)",
    rows: subjects().map((s) => {
      for (let i = 0; i < N; i++) s.put(keys[i]!, values[i]!);
      return measure(s.name, () => {
        let sum = 0;
        for (let i = 0; i < N; i++) sum += s.get(keys[i]!)![0]![7]!;
        check(sum === expected, `${s.name} get-hit`);
        return N;
      }, { batches: 9 });
    }),
  };

  // Half the data fits: each put beyond that spills the coldest value, and the get pass
  // unspills every spilled value (pushing another out).
  const spilling: Table = {
    title: "byte store: put + get + delete with spilling (limit = half the data, in-memory hook)",
    baseline: "MapStore (js index)",
    caption: "memoryLimit 5,000 KiB, target 1; hook keeps references (no copy, no disk)",
    rows: subjects((N / 2) * 1024).map((s) => measure(s.name, () => cycle(s), { batches: 9 })),
  };

  return [putGetDelete, getHit, spilling];
}
