// lz4 block codec (src/protocol/lz4.ts): round trips, dask's size-prefix format, and every way a
// hostile frame can be wrong (each must be a coded error, never a crash or a huge allocation).
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DaskError } from "../../src/errors.ts";
import { claimedSize, compressBlock, decompressBlock, lz4MemoryBytes, setLz4Module } from "../../src/protocol/lz4.ts";
import { errorCode } from "../helpers/env.ts";

const enc = new TextEncoder();

const code = (fn: () => unknown): string => errorCode(fn);

test("compressBlock writes a 4-byte little-endian size prefix then the block", () => {
  const data = enc.encode("abcdefgh".repeat(1000));
  const c = compressBlock(data);
  assert.equal(claimedSize(c), data.length);
  assert.deepEqual([...c.subarray(0, 4)], [data.length & 0xff, (data.length >> 8) & 0xff, 0, 0]);
  assert.ok(c.length < data.length / 10, `repetitive input should shrink, got ${c.length}`);
  assert.deepEqual(decompressBlock(c), data);
});

test("empty input round-trips as a bare zero prefix plus an empty block", () => {
  const c = compressBlock(new Uint8Array(0));
  assert.equal(claimedSize(c), 0);
  assert.equal(decompressBlock(c).length, 0);
});

test("round trip of arbitrary bytes (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat({ max: 8 }), (bytes, reps) => {
      // repeat to get both incompressible and compressible inputs
      const data = new Uint8Array(bytes.length * (reps + 1));
      for (let i = 0; i <= reps; i++) data.set(bytes, i * bytes.length);
      assert.deepEqual(decompressBlock(compressBlock(data)), data);
    }),
    { numRuns: 200 },
  );
});

test("a long run of zeros (ratio close to lz4's 255× ceiling) still decompresses", () => {
  const data = new Uint8Array(8 << 20);
  const c = compressBlock(data);
  assert.ok(c.length * 200 < data.length, `zeros compressed to ${c.length}`);
  assert.deepEqual(decompressBlock(c), data);
});

test("memory growth between calls does not leave stale views", () => {
  // A large call grows the module's memory; a small one afterwards must still be right.
  const big = new Uint8Array(20 << 20).map((_, i) => (i * 2654435761) >>> 24);
  assert.deepEqual(decompressBlock(compressBlock(big)), big);
  const small = enc.encode("x".repeat(100) + "y");
  assert.deepEqual(decompressBlock(compressBlock(small)), small);
});

test("after a big call the instance is dropped, so its grown memory is released", () => {
  const small = enc.encode("small ".repeat(100));
  decompressBlock(compressBlock(small));
  const idle = lz4MemoryBytes();
  assert.ok(idle > 0 && idle < 32 << 20, `idle instance holds ${idle} bytes`);
  const big = new Uint8Array(40 << 20);
  const c = compressBlock(big); // grows memory past 40 MiB for the input alone
  assert.equal(lz4MemoryBytes(), 0);
  assert.deepEqual(decompressBlock(c), big);
  assert.equal(lz4MemoryBytes(), 0);
  assert.deepEqual(decompressBlock(compressBlock(small)), small);
  // a fresh instance: lz4-wasm starts at 17 pages (~1.1 MiB) and a 600-byte call does not grow it
  const fresh = lz4MemoryBytes();
  assert.ok(fresh > 0 && fresh <= idle && fresh < 4 << 20, `fresh instance holds ${fresh} bytes`);
});

test("a prefix claiming 4 GiB is refused before any allocation", () => {
  const frame = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x10, 0x61]);
  assert.equal(code(() => decompressBlock(frame)), "DASK_ERR_LZ4_TOO_LARGE");
  // and with an explicit lower limit
  const c = compressBlock(new Uint8Array(5000));
  assert.equal(code(() => decompressBlock(c, { maxDecompressedBytes: 4999 })), "DASK_ERR_LZ4_TOO_LARGE");
  assert.equal(decompressBlock(c, { maxDecompressedBytes: 5000 }).length, 5000);
});

test("a prefix larger than the block could ever expand to is corrupt", () => {
  const frame = new Uint8Array([0x00, 0x00, 0x10, 0x00, 0x10, 0x61]); // claims 1 MiB from 2 bytes
  assert.equal(code(() => decompressBlock(frame)), "DASK_ERR_LZ4_CORRUPT");
});

test("frames shorter than the prefix, truncated blocks and lying prefixes are coded errors", () => {
  assert.equal(code(() => decompressBlock(new Uint8Array([1, 0]))), "DASK_ERR_LZ4_CORRUPT");
  const data = enc.encode("hello world, hello world, hello world! ".repeat(50));
  const c = compressBlock(data);
  assert.equal(code(() => decompressBlock(c.subarray(0, c.length - 3))), "DASK_ERR_LZ4_CORRUPT");
  const less = c.slice();
  less[0] = less[0]! - 1; // prefix one byte short of the real size
  assert.equal(code(() => decompressBlock(less)), "DASK_ERR_LZ4_CORRUPT");
  const more = c.slice();
  more[0] = more[0]! + 1;
  assert.equal(code(() => decompressBlock(more)), "DASK_ERR_LZ4_CORRUPT");
});

test("random corruption of a valid frame gives a coded error or bytes, never a crash", () => {
  const data = enc.encode("the quick brown fox jumps over the lazy dog ".repeat(200));
  const c = compressBlock(data);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat({ max: c.length - 5 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
      const bad = c.slice();
      for (const [at, v] of edits) bad[4 + at] = v;
      try {
        const out = decompressBlock(bad);
        assert.equal(out.length, data.length); // length is always checked against the prefix
      } catch (err) {
        assert.ok(err instanceof DaskError, String(err));
        assert.match(err.code, /^DASK_ERR_LZ4_/);
      }
    }),
    { numRuns: 500 },
  );
  // After all that the codec still works.
  assert.deepEqual(decompressBlock(c), data);
});

test("setLz4Module accepts a precompiled module (browsers, workerd)", async () => {
  const { readFileSync } = await import("node:fs");
  const bytes = readFileSync(new URL(import.meta.resolve("lz4-wasm/lz4_wasm_bg.wasm")));
  setLz4Module(new WebAssembly.Module(bytes));
  const data = enc.encode("module ".repeat(300));
  assert.deepEqual(decompressBlock(compressBlock(data)), data);
});
