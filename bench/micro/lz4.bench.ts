// lz4 block compress/decompress of 1 MiB in dask's format (u32 LE size + raw block):
// ours (lz4-wasm's module behind src/protocol/lz4.ts) vs lz4-napi (native lz4_flex, baseline)
// vs lz4js (pure JS). Two inputs: half-compressible (random bytes interleaved with runs, about
// the 2:1 that dask's maybe_compress sees on real arrays) and highly compressible (a short
// repeated text). Every timed iteration checks its output length; the round trip is checked once
// per table against the original bytes.
import { createRequire } from "node:module";
import { check, measure, type Table } from "../harness.ts";
import { compressBlock, decompressBlock } from "../../src/protocol/lz4.ts";

const require = createRequire(import.meta.url);
const napi = require("lz4-napi") as {
  compressSync(d: Buffer): Buffer;
  uncompressSync(d: Uint8Array): Buffer;
};
const lz4js = require("lz4js") as {
  compressBound(n: number): number;
  compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
  decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
};

const SIZE = 1 << 20;

/** Deterministic generator (xorshift32): benchmarks must not depend on Math.random. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function halfCompressible(): Uint8Array {
  const next = rng(42);
  const out = new Uint8Array(SIZE);
  // 64-byte chunks alternate: random, then a run of one byte value
  for (let i = 0; i < SIZE; i += 64) {
    if ((i >> 6) & 1) out.fill(next() & 0xff, i, i + 64);
    else for (let j = i; j < i + 64; j++) out[j] = next() & 0xff;
  }
  return out;
}

function highlyCompressible(): Uint8Array {
  const text = new TextEncoder().encode("dask-wasm moves frames between workers; ");
  const out = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i += text.length) out.set(text.subarray(0, Math.min(text.length, SIZE - i)), i);
  return out;
}

const hashTable = new Uint32Array(1 << 16);

function lz4jsCompress(data: Uint8Array): Uint8Array {
  const dst = new Uint8Array(4 + lz4js.compressBound(data.length));
  hashTable.fill(0);
  const n = lz4js.compressBlock(data, dst.subarray(4), 0, data.length, hashTable);
  new DataView(dst.buffer).setUint32(0, data.length, true);
  return dst.subarray(0, 4 + n);
}

function lz4jsDecompress(frame: Uint8Array): Uint8Array {
  const size = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, true);
  const dst = new Uint8Array(size);
  lz4js.decompressBlock(frame, dst, 4, frame.length - 4, 0);
  return dst;
}

function tables(label: string, data: Uint8Array): Table[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const ours = compressBlock(data);
  const native = napi.compressSync(buf);
  const js = lz4jsCompress(data);
  // Cross-check once: every codec reads the others' output (same format).
  check(Buffer.from(decompressBlock(native)).equals(buf), "ours decodes lz4-napi");
  check(napi.uncompressSync(ours).equals(buf), "lz4-napi decodes ours");
  check(Buffer.from(lz4jsDecompress(ours)).equals(buf), "lz4js decodes ours");
  check(Buffer.from(decompressBlock(js)).equals(buf), "ours decodes lz4js");
  const ratio = `ratio ${(ours.length / data.length).toFixed(3)}`;
  const opts = { bytesPerOp: SIZE, batches: 5, minBatchMs: 100 };
  return [
    {
      title: `lz4 compress, 1 MiB ${label}`,
      baseline: "lz4-napi (native)",
      caption: `${ratio} (ours); napi ${(native.length / SIZE).toFixed(3)}; lz4js ${(js.length / SIZE).toFixed(3)}`,
      rows: [
        measure("lz4-napi (native)", () => check(napi.compressSync(buf).length === native.length, "napi size"), opts),
        measure("ours (lz4-wasm, own loader)", () => check(compressBlock(data).length === ours.length, "ours size"), opts),
        measure("lz4js", () => check(lz4jsCompress(data).length === js.length, "lz4js size"), opts),
      ],
    },
    {
      title: `lz4 decompress, 1 MiB ${label}`,
      baseline: "lz4-napi (native)",
      caption: "each codec decompresses the frame produced by ours",
      rows: [
        measure("lz4-napi (native)", () => check(napi.uncompressSync(ours).length === SIZE, "napi size"), opts),
        measure("ours (lz4-wasm, own loader)", () => check(decompressBlock(ours).length === SIZE, "ours size"), opts),
        measure("lz4js", () => check(lz4jsDecompress(ours).length === SIZE, "lz4js size"), opts),
      ],
    },
  ];
}

export function run(): Table[] {
  return [...tables("half-compressible", halfCompressible()), ...tables("highly compressible", highlyCompressible())];
}
