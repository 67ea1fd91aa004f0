// ByteStore semantics, run against both indexes (wasm and js): exact nbytes, LRU order of
// eviction, heavy values straight to spill, byte-identical round trips through an in-memory hook
// and through DiskSpill, a failing hook losing nothing, no-hook behaviour, option validation,
// and u64 accounting past 4 GiB.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { ByteStore, type ByteStoreOptions, type SpillHook } from "../../src/store/byte-store.ts";
import { DiskSpill } from "../../src/store/disk-spill.ts";
import { ConfigError, StoreError, WasmError } from "../../src/errors.ts";
import { WasmStoreIndex, type StoreIndex } from "../../src/wasm/store.ts";

class MemHook implements SpillHook {
  readonly files = new Map<string, Uint8Array[]>();
  readonly calls: string[] = [];
  failWrite = false;
  failRead = false;
  failRemove = false;
  write(key: string, frames: readonly Uint8Array[]): void {
    this.calls.push(`write ${key}`);
    if (this.failWrite) throw new Error("ENOSPC: no space left on device");
    this.files.set(key, frames.map((f) => f.slice()));
  }
  read(key: string): Uint8Array[] {
    this.calls.push(`read ${key}`);
    if (this.failRead) throw new Error("EIO");
    return this.files.get(key)!.map((f) => f.slice());
  }
  remove(key: string): void {
    this.calls.push(`remove ${key}`);
    if (this.failRemove) throw new Error("EIO");
    this.files.delete(key);
  }
}

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255);
const isSpillFailed = (e: unknown): boolean => e instanceof StoreError && e.code === "DASK_ERR_SPILL_FAILED";

for (const backend of ["wasm", "js"] as const) {
  const make = (o: Omit<ByteStoreOptions, "backend"> = {}): ByteStore => new ByteStore({ ...o, backend });

  test(`[${backend}] put/get/delete/has and exact nbytes over several frames`, () => {
    const s = make();
    const f = [bytes(3, 1), bytes(0, 2), bytes(1000, 3)];
    s.put("('x', 0)", f, { type: "numpy" });
    assert.equal(s.nbytes("('x', 0)"), 1003);
    assert.equal(s.has("('x', 0)"), true);
    assert.equal(s.has("('x', 1)"), false);
    assert.equal(s.get("missing"), undefined);
    assert.equal(s.nbytes("missing"), undefined);
    const v = s.get("('x', 0)")!;
    assert.deepEqual(v.header, { type: "numpy" });
    assert.deepEqual(v.frames, f);
    assert.equal(v.frames[2], f[2], "payloads are kept, not copied");
    s.put("('x', 0)", [bytes(5, 4)]); // replace
    assert.equal(s.nbytes("('x', 0)"), 5);
    assert.equal(s.size, 1);
    assert.deepEqual(s.stats().memoryBytes, 5);
    assert.equal(s.delete("('x', 0)"), true);
    assert.equal(s.delete("('x', 0)"), false);
    assert.equal(s.size, 0);
    assert.equal(s.stats().memoryBytes, 0);
  });

  test(`[${backend}] a key with a lone surrogate is refused and never aliases U+FFFD`, () => {
    const s = make();
    s.put("a\uFFFD", [bytes(1, 1)]);
    assert.equal(s.get("a\uD800"), undefined);
    assert.equal(s.has("a\uD800"), false);
    assert.equal(s.delete("a\uD800"), false);
    assert.throws(() => s.put("a\uD800", [bytes(1, 2)]), (e: unknown) => e instanceof StoreError && e.code === "DASK_ERR_STORE_KEY");
    assert.equal(s.size, 1);
    assert.deepEqual(s.get("a\uFFFD")!.frames, [bytes(1, 1)]);
  });

  test(`[${backend}] the least recently used values are spilled first, and get brings one back`, () => {
    const hook = new MemHook();
    const s = make({ memoryLimit: 1000, target: 0.5, spill: hook }); // target 500 bytes
    for (const k of ["a", "b", "c", "d"]) s.put(k, [bytes(100, k.charCodeAt(0))]);
    s.get("a"); // a becomes the most recently used: order b, c, d, a
    assert.deepEqual(s.lruKeys(), ["b", "c", "d", "a"]);
    s.put("e", [bytes(250, 5)]); // 650 > 500: spill b then c (100 each) -> 450
    assert.deepEqual(hook.calls, ["write b", "write c"]);
    assert.deepEqual(s.lruKeys(), ["d", "a", "e"]);
    assert.equal(s.isSpilled("b"), true);
    assert.deepEqual(s.stats(), { ...s.stats(), keys: 5, memoryBytes: 450, spilledBytes: 200, spilledCount: 2, spills: 2, unspills: 0 });
    // get of a spilled value: read, remove from slow, into memory (550 > 500 -> spill d).
    const v = s.get("b")!;
    assert.deepEqual(v.frames, [bytes(100, "b".charCodeAt(0))]);
    assert.deepEqual(hook.calls.slice(2), ["read b", "remove b", "write d"]);
    assert.deepEqual(s.lruKeys(), ["a", "e", "b"]);
    assert.equal(s.stats().unspills, 1);
    // peek: no LRU bump and no unspill.
    assert.deepEqual(s.peek("c")!.frames, [bytes(100, "c".charCodeAt(0))]);
    assert.equal(s.isSpilled("c"), true);
    s.peek("a");
    assert.deepEqual(s.lruKeys(), ["a", "e", "b"]);
    // delete of a spilled value removes the hook's copy.
    assert.equal(s.delete("c"), true);
    assert.equal(hook.files.has("c"), false);
  });

  test(`[${backend}] a value heavier than the target goes straight to spill and stays there`, () => {
    const hook = new MemHook();
    const s = make({ memoryLimit: 1000, spill: hook }); // default target 0.6 -> 600 bytes
    s.put("small", [bytes(100, 1)]);
    s.put("big", [bytes(400, 2), bytes(201, 3)]);
    assert.deepEqual(hook.calls, ["write big"], "only the heavy value moves");
    assert.equal(s.isSpilled("big"), true);
    assert.equal(s.isSpilled("small"), false);
    assert.equal(s.stats().memoryBytes, 100);
    const v = s.get("big")!;
    assert.deepEqual(v.frames, [bytes(400, 2), bytes(201, 3)]);
    assert.equal(s.isSpilled("big"), true, "zict slow_to_fast keeps heavy values in slow");
    assert.equal(s.stats().unspills, 0);
    // Replacing a spilled key drops the stale spilled copy first.
    s.put("big", [bytes(10, 4)]);
    assert.deepEqual(hook.calls.slice(-1), ["remove big"]);
    assert.equal(hook.files.has("big"), false);
    assert.equal(s.stats().spilledCount, 0);
  });

  test(`[${backend}] without a spill hook, exceeding the limit keeps everything in memory`, () => {
    const s = make({ memoryLimit: 100 });
    for (let i = 0; i < 5; i++) s.put(`k${i}`, [bytes(50, i)]);
    const st = s.stats();
    assert.equal(st.memoryBytes, 250);
    assert.equal(st.spilledCount, 0);
    assert.equal(st.targetBytes, 0);
    assert.equal(st.overLimit, true);
    for (let i = 0; i < 5; i++) assert.deepEqual(s.get(`k${i}`)!.frames, [bytes(50, i)]);
  });

  test(`[${backend}] a failing spill hook loses nothing and reports DASK_ERR_SPILL_FAILED`, () => {
    const hook = new MemHook();
    const s = make({ memoryLimit: 300, target: 1, spill: hook });
    s.put("a", [bytes(200, 1)]);
    hook.failWrite = true;
    assert.throws(() => s.put("b", [bytes(200, 2)]), isSpillFailed);
    // b was stored although put threw; a could not be spilled and is still in memory.
    assert.deepEqual(s.get("a")!.frames, [bytes(200, 1)]);
    assert.deepEqual(s.get("b")!.frames, [bytes(200, 2)]);
    assert.equal(s.stats().spillErrors, 1);
    assert.equal(s.stats().overLimit, true);
    assert.equal(hook.files.size, 0);

    // With onSpillError, the error goes to the callback and put returns normally.
    const errors: StoreError[] = [];
    const hook2 = new MemHook();
    const s2 = make({ memoryLimit: 300, target: 1, spill: hook2, onSpillError: (e) => errors.push(e) });
    s2.put("a", [bytes(200, 1)]);
    s2.put("b", [bytes(200, 2)]); // spills a
    assert.equal(s2.isSpilled("a"), true);
    hook2.failRead = true;
    assert.throws(() => s2.get("a"), isSpillFailed); // cannot read it back: still spilled
    assert.equal(s2.isSpilled("a"), true);
    hook2.failRead = false;
    hook2.failWrite = true;
    const v = s2.get("a")!; // back in memory; spilling b to make room fails -> callback
    assert.deepEqual(v.frames, [bytes(200, 1)]);
    assert.equal(errors.length, 1);
    assert.ok(isSpillFailed(errors[0]));
    assert.match(errors[0]!.message, /write "b".*ENOSPC/);
    assert.deepEqual(s2.get("b")!.frames, [bytes(200, 2)]);
    assert.equal(s2.stats().memoryBytes, 400);
  });

  test(`[${backend}] values round-trip byte-identical through DiskSpill, which cleans up`, () => {
    const parent = mkdtempSync(join(tmpdir(), "dask-wasm-test-"));
    try {
      const disk = new DiskSpill(parent);
      const s = make({ memoryLimit: 4096, target: 0.5, spill: disk });
      const keys = ["('x', 0)", "a/b\\c", "ключ", "k".repeat(1000), "", "inc-0123"];
      const values = keys.map((_, i) => [bytes(700 + i, i), bytes(0, 0), bytes(13, i + 1)]);
      keys.forEach((k, i) => s.put(k, values[i]!));
      const st = s.stats();
      assert.ok(st.spilledCount >= 3, `spilled ${st.spilledCount}`);
      assert.equal(readdirSync(disk.directory).length, st.spilledCount, "one file per spilled key");
      assert.equal(disk.usage().files, st.spilledCount);
      for (let round = 0; round < 2; round++) {
        keys.forEach((k, i) => assert.deepEqual(s.get(k)!.frames, values[i], `${k} round ${round}`));
      }
      for (const k of keys) s.delete(k);
      assert.deepEqual(readdirSync(disk.directory), [], "delete removes the files");
      disk.close();
      assert.equal(existsSync(disk.directory), false);
      assert.throws(() => disk.write("x", []), (e: unknown) => e instanceof StoreError && e.code === "DASK_ERR_SPILL_CLOSED");
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  test(`[${backend}] totals are exact past 4 GiB (u64 nbytes; payloads outside Wasm memory)`, () => {
    // 80 keys sharing one 64 MiB buffer: 5 GiB accounted while only 64 MiB is allocated. This
    // checks the index arithmetic a wasm32 u32 would wrap; the child-process test holds real bytes.
    const s = make();
    const chunk = new Uint8Array(64 << 20);
    for (let i = 0; i < 80; i++) s.put(`chunk-${i}`, [chunk]);
    assert.equal(s.stats().memoryBytes, 80 * 2 ** 26);
    assert.ok(s.stats().memoryBytes > 2 ** 32);
    assert.equal(s.nbytes("chunk-79"), 2 ** 26);
    for (let i = 0; i < 80; i += 2) s.delete(`chunk-${i}`);
    assert.equal(s.stats().memoryBytes, 40 * 2 ** 26);
  });
}

/**
 * A Wasm index that traps on the next call of `op`, either before the call reaches the
 * instance or after it changed the instance's state (both leave a memory JS cannot trust).
 */
function trappingIndex(arm: { op: string; when: "before" | "after" } | undefined): () => StoreIndex {
  return () => {
    const real = new WasmStoreIndex();
    return new Proxy(real, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          const hit = arm !== undefined && prop === arm.op;
          if (hit && arm!.when === "before") { arm = undefined; throw new WebAssembly.RuntimeError("unreachable"); }
          const r = (v as (...a: unknown[]) => unknown).apply(target, args);
          if (hit) { arm = undefined; throw new WebAssembly.RuntimeError("memory access out of bounds"); }
          return r;
        };
      },
    }) as StoreIndex;
  };
}

for (const when of ["before", "after"] as const) {
  for (const [op, action] of [
    ["put", (s: ByteStore) => s.put("new", [bytes(100, 9)])],
    ["markSpilled", (s: ByteStore) => s.put("new", [bytes(100, 9)])],
    ["get", (s: ByteStore) => s.get("k0")],
    ["unspill", (s: ByteStore) => s.get("k0")],
    ["delete", (s: ByteStore) => s.delete("k1")],
  ] as const) {
    test(`a trap in the Wasm index (${op}, ${when} the call) is coded, the index is rebuilt, nothing is lost`, () => {
      const hook = new MemHook();
      const arm: { op: string; when: "before" | "after" } = { op: "none", when };
      const s = new ByteStore({ memoryLimit: 1000, target: 0.5, spill: hook, index: trappingIndex(arm) });
      const want = new Map<string, Uint8Array[]>();
      for (let i = 0; i < 8; i++) {
        want.set(`k${i}`, [bytes(100, i)]);
        s.put(`k${i}`, [bytes(100, i)]);
      }
      assert.equal(s.isSpilled("k0"), true, "k0 is cold and spilled, so get(k0) unspills");
      arm.op = op;
      assert.throws(() => action(s), (e: unknown) => e instanceof WasmError && e.code === "DASK_ERR_WASM_TRAP" && e.cause instanceof WebAssembly.RuntimeError);
      assert.equal(arm.op, op, "the trap fired once");
      assert.equal(s.stats().indexRebuilds, 1);
      // The key the failed action touched may or may not have been applied; every other key is intact.
      const present = [...s.keys()];
      for (const k of want.keys()) if (k !== "k1" || op !== "delete") assert.ok(present.includes(k), `${k} kept`);
      let total = 0;
      for (const k of present) {
        const v = s.get(k)!;
        if (want.has(k)) assert.deepEqual(v.frames, want.get(k));
        total += s.nbytes(k)!;
      }
      const st = s.stats();
      assert.equal(st.memoryBytes + st.spilledBytes, total);
      assert.equal(st.keys, present.length);
      for (const k of present) if (s.isSpilled(k)) assert.ok(hook.files.has(k), `spilled ${k} still in the hook`);
      assert.ok(st.memoryBytes <= st.targetBytes, "spilling works on the rebuilt index");
    });
  }
}

test("DiskSpill detects a corrupt file instead of returning wrong bytes", () => {
  const disk = new DiskSpill();
  try {
    disk.write("k", [bytes(100, 1), bytes(50, 2)]);
    assert.deepEqual(disk.read("k"), [bytes(100, 1), bytes(50, 2)]);
    const [name] = readdirSync(disk.directory);
    const path = join(disk.directory, name!);
    writeFileSync(path, readFileSync(path).subarray(0, 120)); // truncate
    assert.throws(() => disk.read("k"), (e: unknown) => e instanceof StoreError && e.code === "DASK_ERR_SPILL_CORRUPT");
    disk.remove("k");
    assert.deepEqual(disk.usage(), { files: 0, bytes: 0 });
  } finally {
    disk.close();
  }
  assert.equal(existsSync(disk.directory), false);
});

test("options are validated, and DASK_WASM_BACKEND picks the index", () => {
  assert.throws(() => new ByteStore({ target: 0 }), ConfigError);
  assert.throws(() => new ByteStore({ target: 1.5 }), /options.target/);
  assert.throws(() => new ByteStore({ memoryLimit: -1 }), /options.memoryLimit/);
  assert.throws(() => new ByteStore({ backend: "gpu" as "js" }), /options.backend/);
  const saved = process.env.DASK_WASM_BACKEND;
  try {
    process.env.DASK_WASM_BACKEND = "js";
    assert.equal(new ByteStore().backend, "js");
    process.env.DASK_WASM_BACKEND = "wasm";
    assert.equal(new ByteStore().backend, "wasm");
    assert.equal(new ByteStore({ backend: "js" }).backend, "js", "the option wins over the environment");
    delete process.env.DASK_WASM_BACKEND;
    assert.equal(new ByteStore().backend, "wasm", "default");
  } finally {
    if (saved === undefined) delete process.env.DASK_WASM_BACKEND;
    else process.env.DASK_WASM_BACKEND = saved;
  }
});

test("the core build exports the store index kernel", () => {
  for (const file of ["core.wasm", "core.debug.wasm"]) {
    const mod = new WebAssembly.Module(readFileSync(new URL(`../../build/${file}`, import.meta.url)));
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const n of ["storePut", "storeGet", "storeFind", "storeDelete", "storeMarkSpilled", "storeUnspill", "storeLruOrder", "storeResultPtr"]) {
      assert.ok(names.includes(n), `${file} exports ${n}`);
    }
  }
});
