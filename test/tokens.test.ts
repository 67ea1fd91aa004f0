// Tokens and keys (src/tokens.ts, src/wasm/token.ts, assembly/token.ts).
// MD5 is checked against RFC 1321's test suite and node:crypto (the oracle); the canonical
// encoding against an independent decoder written here (so equal bytes imply equal values),
// insertion-order invariance, a list of values that must all differ, pinned golden keys
// (cross-run / cross-runtime stability) and coded errors with the offending value's path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import {
  canonicalEncode, tokenize, taskKey, taskKeys, funcName, md5, md5Batch, TokenizeError, MAX_DEPTH, tokenBackend, type TaskSpecInput,
} from "../src/tokens.ts";
import { tuple, isTuple } from "../src/protocol/values.ts";
import { DaskError } from "../src/errors.ts";
import { readFileSync } from "node:fs";
import { CoreInstance } from "../src/wasm/core.ts";
import { TokenCore, TokenJs, CHUNK_BYTES } from "../src/wasm/token.ts";
import * as S from "../assembly/status.ts";

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const cryptoMd5 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash("md5").update(b).digest());
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// MD5 kernel

test("RFC 1321 appendix A.5 test suite", () => {
  // The seven (input, digest) pairs printed in RFC 1321 A.5.
  const suite: Array<[string, string]> = [
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    ["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"],
    ["1234567890".repeat(8), "57edf4a22be3c955ac49da2e2107b67a"],
  ];
  for (const [input, digest] of suite) assert.equal(hex(md5(ascii(input))), digest, JSON.stringify(input));
  const batch = md5Batch(suite.map(([s]) => ascii(s)));
  assert.equal(hex(batch), suite.map(([, d]) => d).join(""));
});

test("md5 equals node:crypto for every length 0..300 (random contents)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 300, maxLength: 300 }), (bytes) => {
      for (let len = 0; len <= 300; len++) {
        const b = bytes.subarray(0, len);
        assert.equal(hex(md5(b)), hex(cryptoMd5(b)), `length ${len}`);
      }
    }),
    { numRuns: 20 },
  );
});

test("the backend follows DASK_WASM_BACKEND (run this file with =js and =wasm)", () => {
  assert.equal(tokenBackend(), process.env.DASK_WASM_BACKEND === "js" ? "js" : "wasm");
});

test("TS twin and Wasm kernel agree with node:crypto on random batches (raw and hex)", () => {
  const js = new TokenJs();
  const wasm = new TokenCore();
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (inputs) => {
      const want = inputs.map((b) => hex(cryptoMd5(b))).join("");
      assert.equal(hex(js.digestMany(inputs)), want);
      assert.equal(hex(wasm.digestMany(inputs)), want);
      const all = new Uint8Array(inputs.reduce((s, b) => s + b.length, 0));
      const ends: number[] = [];
      let p = 0;
      for (const b of inputs) { all.set(b, p); p += b.length; ends.push(p); }
      assert.equal(js.hexSpans(all, ends, ends.length), want);
      assert.equal(wasm.hexSpans(all, ends, ends.length), want);
    }),
    { numRuns: 200 },
  );
  const big = new Uint8Array((1 << 20) + 57).map((_, i) => (i * 29) & 0xff);
  assert.equal(hex(js.digestMany([big])), hex(cryptoMd5(big)));
});

test("md5 equals node:crypto on large inputs around 64-byte block edges", () => {
  for (const len of [64 * 1024 - 1, 64 * 1024, 64 * 1024 + 55, 64 * 1024 + 56, 1 << 20, (1 << 20) + 13]) {
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = (i * 131 + (i >> 8)) & 0xff;
    assert.equal(hex(md5(b)), hex(cryptoMd5(b)), `length ${len}`);
  }
});

test("md5Batch of mixed sizes equals per-input node:crypto, in order", () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 130 }), fc.uint8Array({ minLength: 500, maxLength: 5000 })), { maxLength: 40 }), (inputs) => {
      const out = md5Batch(inputs);
      assert.equal(out.length, 16 * inputs.length);
      for (let i = 0; i < inputs.length; i++) assert.equal(hex(out.subarray(16 * i, 16 * i + 16)), hex(cryptoMd5(inputs[i]!)), `input ${i}`);
    }),
    { numRuns: 100 },
  );
  assert.equal(md5Batch([]).length, 0);
});

test("md5Batch reads views at a byteOffset and leaves the caller's bytes alone", () => {
  const big = new Uint8Array(1000).map((_, i) => i & 0xff);
  const views = [big.subarray(3, 70), big.subarray(999), big.subarray(500, 500), big.subarray(1, 999)];
  const copy = big.slice();
  const out = md5Batch(views);
  views.forEach((v, i) => assert.equal(hex(out.subarray(16 * i, 16 * i + 16)), hex(cryptoMd5(v))));
  assert.deepEqual(big, copy);
});

test("batches larger than CHUNK_BYTES are split, results unchanged, Wasm memory bounded", () => {
  const tc = new TokenCore();
  const big = new Uint8Array(CHUNK_BYTES - 100).map((_, i) => (i * 7) & 0xff);
  const inputs = [ascii("a"), big, big.subarray(5), ascii("tail"), big.subarray(0, 1000), new Uint8Array(CHUNK_BYTES + 1)];
  const out = tc.digestMany(inputs);
  inputs.forEach((b, i) => assert.equal(hex(out.subarray(16 * i, 16 * i + 16)), hex(cryptoMd5(b)), `input ${i}`));
  for (let r = 0; r < 4; r++) tc.digestMany([big, big, big, big]);
  // chunk + largest single input + table, regions sized in powers of two: 4 x CHUNK_BYTES at most
  assert.ok(tc.memoryBytes <= 4 * CHUNK_BYTES, `Wasm memory ${tc.memoryBytes}`);
  // spans version (taskKeys' path), split across chunks too
  const data = new Uint8Array(3 * CHUNK_BYTES).map((_, i) => (i * 13) & 0xff);
  const ends = [10, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES + 5, 3 * CHUNK_BYTES];
  const hx = tc.hexSpans(data, ends, ends.length);
  ends.forEach((e, i) => assert.equal(hx.slice(32 * i, 32 * i + 32), hex(cryptoMd5(data.subarray(i ? ends[i - 1] : 0, e))), `span ${i}`));
  // and taskKeys over many large-argument tasks agrees with taskKey one by one
  const tasks = Array.from({ length: 12 }, (_, i) => ({ fn: "t.js#big", args: ["x".repeat(CHUNK_BYTES / 4) + i] }));
  assert.deepEqual(taskKeys(tasks), tasks.map((t) => taskKey(t.fn, t.args)));
});

test("md5 inputs that are not Uint8Arrays are refused with a code", () => {
  assert.throws(() => md5Batch([ascii("a"), [1, 2] as unknown as Uint8Array]), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_TOKEN_INPUT" && /input 1/.test(e.message));
  assert.throws(() => md5("abc" as unknown as Uint8Array), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_TOKEN_INPUT");
});

for (const file of ["core.wasm", "core.debug.wasm"]) {
  test(`${file} exports the token kernel (ABI 1) and hashes with it`, () => {
    const mod = new WebAssembly.Module(readFileSync(new URL(`../build/${file}`, import.meta.url)));
    const core = new CoreInstance(mod);
    const ex = core.exports as unknown as { md5Batch(count: number, dataLen: number, hex: number): number; tokenVersion(): number };
    assert.equal(ex.tokenVersion(), 1);
    const table = core.region(S.REGION_TOKEN_IN, 8 + 3);
    const out = core.region(S.REGION_TOKEN_OUT, 32);
    const dv = core.dv();
    dv.setUint32(table, 0, true);
    dv.setUint32(table + 4, 3, true);
    core.u8().set(ascii("abc"), table + 8);
    assert.equal(ex.md5Batch(1, 3, 1), 1);
    assert.equal(Buffer.from(core.u8().subarray(out, out + 32)).toString("latin1"), "900150983cd24fb0d6963f7d28e17f72");
  });
}

test("md5Batch kernel refuses inconsistent tables with status codes, never a trap", () => {
  const core = new CoreInstance();
  const ex = core.exports as unknown as { md5Batch(count: number, dataLen: number, hex: number): number };
  const table = core.region(S.REGION_TOKEN_IN, 64);
  core.region(S.REGION_TOKEN_OUT, 64);
  const dv = core.dv();
  // entry 0 valid, entry 1 reaches one byte past dataLen = 20
  dv.setUint32(table, 0, true);
  dv.setUint32(table + 4, 10, true);
  dv.setUint32(table + 8, 10, true);
  dv.setUint32(table + 12, 11, true);
  assert.equal(ex.md5Batch(2, 20, 0), S.ERR_TOKEN_INPUT);
  dv.setUint32(table + 12, 10, true);
  assert.equal(ex.md5Batch(2, 20, 0), 2);
  // offset + length overflowing u32 must not wrap around
  dv.setUint32(table + 8, 0xffffffff, true);
  dv.setUint32(table + 12, 2, true);
  assert.equal(ex.md5Batch(2, 20, 0), S.ERR_TOKEN_INPUT);
  // layouts larger than the regions, and negative counts
  assert.equal(ex.md5Batch(1, 1 << 20, 0), S.ERR_BAD_ARGUMENT);
  assert.equal(ex.md5Batch(4096, 0, 1), S.ERR_BAD_ARGUMENT);
  assert.equal(ex.md5Batch(-1, 0, 0), S.ERR_BAD_ARGUMENT);
});

test("md5Batch kernel on random (hostile) tables: a status or correct digests, never a trap", () => {
  const core = new CoreInstance();
  const ex = core.exports as unknown as { md5Batch(count: number, dataLen: number, hex: number): number };
  const u32 = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(0xffffffff, 0x80000000, 0x7fffffff), fc.nat());
  fc.assert(
    fc.property(fc.array(fc.tuple(u32, u32), { maxLength: 12 }), fc.integer({ min: 0, max: 400 }), fc.uint8Array({ minLength: 400, maxLength: 400 }), (entries, dataLen, bytes) => {
      const n = entries.length;
      const table = core.region(S.REGION_TOKEN_IN, n * 8 + 400);
      const out = core.region(S.REGION_TOKEN_OUT, n * 16 + 1);
      const dv = core.dv();
      entries.forEach(([o, l], i) => { dv.setUint32(table + 8 * i, o, true); dv.setUint32(table + 8 * i + 4, l, true); });
      core.u8().set(bytes, table + n * 8);
      const status = ex.md5Batch(n, dataLen, 0);
      const valid = entries.every(([o, l]) => o + l <= dataLen);
      assert.equal(status, valid ? n : S.ERR_TOKEN_INPUT);
      if (valid) {
        const u8 = core.u8();
        entries.forEach(([o, l], i) => assert.equal(hex(u8.subarray(out + 16 * i, out + 16 * i + 16)), hex(cryptoMd5(bytes.subarray(o, o + l)))));
      }
    }),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------------------------------------
// Canonical encoding: an independent decoder. decode(canonicalEncode(v)) must equal norm(v)
// and consume every byte, so the encoding is injective on what norm tells apart.

type Norm = unknown;
const byJson = (a: unknown, b: unknown): number => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0);
const numNorm = (v: number): Norm =>
  Number.isSafeInteger(v) && !Object.is(v, -0) ? ["I", v] : ["D", Object.is(v, -0) ? "-0" : String(v)];
const TYPED_CHAR: Record<string, string> = {
  Int8Array: "b", Uint8ClampedArray: "C", Int16Array: "h", Uint16Array: "H", Int32Array: "i", Uint32Array: "I",
  Float32Array: "f", Float64Array: "d", BigInt64Array: "q", BigUint64Array: "Q", Float16Array: "e",
};

function norm(v: unknown): Norm {
  if (v === null) return ["N"];
  switch (typeof v) {
    case "undefined": return ["U"];
    case "boolean": return [v ? "T" : "F"];
    case "number": return numNorm(v);
    case "bigint": return ["B", v.toString()];
    case "string": return ["S", v];
  }
  if (Array.isArray(v)) return [isTuple(v) ? "P" : "L", ...v.map(norm)];
  if (v instanceof Uint8Array) return ["Y", hex(v)];
  if (ArrayBuffer.isView(v)) return ["A", TYPED_CHAR[(v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]], hex(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))];
  if (typeof (v as { __dask_tokenize__?: unknown }).__dask_tokenize__ === "function") return ["K", norm((v as { __dask_tokenize__(): unknown }).__dask_tokenize__())];
  if (v instanceof Map) return ["M", ...[...v].map(([k, x]) => [norm(k), norm(x)]).sort(byJson)];
  if (v instanceof Set) return ["E", ...[...v].map(norm).sort(byJson)];
  if (v instanceof Date) return ["d", String(v.getTime())];
  return ["O", ...Object.keys(v).map((k) => [["S", k], norm((v as Record<string, unknown>)[k])]).sort(byJson)];
}

function decode(bytes: Uint8Array): Norm {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const uv = (): number => {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = bytes[p++]!;
      n += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) {
        assert.ok(b !== 0 || scale === 128, "LEB128 is minimal");
        return n;
      }
    }
  };
  const take = (n: number): Uint8Array => {
    assert.ok(p + n <= bytes.length, "length inside the buffer");
    const out = bytes.subarray(p, p + n);
    p += n;
    return out;
  };
  const f64 = (): string => {
    const v = dv.getFloat64(p, true);
    if (Number.isNaN(v)) assert.equal(hex(bytes.subarray(p, p + 8)), "000000000000f87f", "canonical NaN");
    p += 8;
    return Object.is(v, -0) ? "-0" : String(v);
  };
  const wtf8 = (b: Uint8Array): string => {
    let s = "";
    for (let i = 0; i < b.length;) {
      const c = b[i]!;
      if (c < 0x80) { s += String.fromCharCode(c); i += 1; }
      else if (c < 0xe0) { s += String.fromCharCode(((c & 0x1f) << 6) | (b[i + 1]! & 0x3f)); i += 2; }
      else if (c < 0xf0) { s += String.fromCharCode(((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f)); i += 3; }
      else { s += String.fromCodePoint(((c & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f)); i += 4; }
    }
    return s;
  };
  const sortedSpans = (n: number, one: () => Norm): Norm[] => {
    const items: Norm[] = [];
    let prev: Uint8Array | undefined;
    for (let i = 0; i < n; i++) {
      const s = p;
      items.push(one());
      const span = bytes.subarray(s, p);
      if (prev) assert.ok(Buffer.compare(prev, span) <= 0, "entries sorted by their bytes");
      prev = span;
    }
    return items.sort(byJson);
  };
  const value = (): Norm => {
    const tag = String.fromCharCode(bytes[p++]!);
    switch (tag) {
      case "N": case "U": case "F": case "T": return [tag];
      case "I": return ["I", uv()];
      case "J": return ["I", -1 - uv()];
      case "D": { const f = f64(); assert.ok(!(Number.isSafeInteger(Number(f)) && f !== "-0"), "safe integers are never 'D'"); return ["D", f]; }
      case "d": return ["d", f64()];
      case "B": {
        const neg = bytes[p++] === 1;
        const mag = take(uv());
        let v = 0n;
        for (let i = mag.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(mag[i]!);
        return ["B", (neg ? -v : v).toString()];
      }
      case "S": return ["S", wtf8(take(uv()))];
      case "Y": return ["Y", hex(take(uv()))];
      case "A": { const dt = String.fromCharCode(bytes[p++]!); return ["A", dt, hex(take(uv()))]; }
      case "L": case "P": { const n = uv(); const out: Norm[] = [tag]; for (let i = 0; i < n; i++) out.push(value()); return out; }
      case "O": return ["O", ...sortedSpans(uv(), () => { const k = value(); assert.equal((k as string[])[0], "S"); return [k, value()]; })];
      case "M": return ["M", ...sortedSpans(uv(), () => [value(), value()])];
      case "E": return ["E", ...sortedSpans(uv(), value)];
      case "K": return ["K", value()];
      default: throw new Error(`unknown tag ${tag} at ${p - 1}`);
    }
  };
  assert.equal(bytes[p++], 1, "format version");
  const v = value();
  assert.equal(p, bytes.length, "no trailing bytes");
  return v;
}

const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  // arbitrary UTF-16 units, lone surrogates included
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 60 }).map((u) => String.fromCharCode(...u)),
);
const { value: anyValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, undefined, true, false, 0, -0, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53) + 1),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.bigInt(),
    anyString,
    fc.uint8Array({ maxLength: 20 }),
    fc.float64Array({ maxLength: 5 }),
    fc.int16Array({ maxLength: 5 }),
    fc.bigInt64Array({ maxLength: 3 }),
    fc.date(),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.array(tie("value"), { maxLength: 5 }).map((a) => tuple(...a)),
    fc.dictionary(anyString, tie("value"), { maxKeys: 5 }),
    fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 }).map((e) => new Map(e)),
    fc.array(tie("value"), { maxLength: 4 }).map((e) => new Set(e)),
    tie("value").map((inner) => ({ __dask_tokenize__: () => inner })),
  ),
}));

test("canonicalEncode decodes back to the value (injective, prefix-free, sorted, minimal)", () => {
  fc.assert(
    fc.property(anyValue, (v) => {
      assert.deepEqual(decode(canonicalEncode(v)), norm(v));
    }),
    { numRuns: 2000 },
  );
});

test("equal bytes only for equal values; tokenize is md5 of the tuple's encoding", () => {
  fc.assert(
    fc.property(anyValue, anyValue, (a, b) => {
      const same = hex(canonicalEncode(a)) === hex(canonicalEncode(b));
      assert.equal(same, JSON.stringify(norm(a)) === JSON.stringify(norm(b)));
      assert.equal(tokenize(a, b), hex(cryptoMd5(canonicalEncode(tuple(a, b)))));
    }),
    { numRuns: 500 },
  );
});

const shuffle = <T>(xs: T[], seed: number): T[] => {
  // deterministic Fisher-Yates driven by fast-check's seed
  const out = xs.slice();
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

test("insertion order of objects, Maps and Sets never changes the token", () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(anyString, anyValue), { selector: (e) => e[0], maxLength: 8 }), fc.integer(), (entries, seed) => {
      const other = shuffle(entries, seed);
      // null-prototype objects so that a "__proto__" key is an ordinary own property
      const o1 = Object.assign(Object.create(null), Object.fromEntries(entries)) as Record<string, unknown>;
      const o2 = Object.assign(Object.create(null), Object.fromEntries(other)) as Record<string, unknown>;
      assert.equal(tokenize(o1), tokenize(o2));
      assert.equal(taskKey("t.js#f", [], o1), taskKey("t.js#f", [], o2));
      assert.equal(tokenize(new Map(entries)), tokenize(new Map(other)));
      assert.equal(tokenize(new Set(entries.map((e) => e[0]))), tokenize(new Set(other.map((e) => e[0]))));
    }),
    { numRuns: 300 },
  );
  // integer-like keys enumerate first in JS whatever the insertion order; the encoding sorts anyway
  assert.equal(tokenize({ b: 1, 10: 2, a: 3, 2: 4 }), tokenize({ 2: 4, a: 3, 10: 2, b: 1 }));
});

test("different values give different tokens", () => {
  const values: unknown[] = [
    1, 1.5, "1", true, [1], tuple(1), new Uint8Array([1]), new Float64Array([1]), 1n, new Set([1]), new Map([[1, 1]]),
    0, -0, NaN, Infinity, -1, null, undefined, "", [], tuple(), {}, new Map(), new Set(), false,
    new Int8Array([1]), new Uint8ClampedArray([1]), [[1]], [tuple(1)], ["a", "b"], ["ab"], [["a"], "b"], [["a", "b"]],
    { a: 1 }, { a: "1" }, { a: [1] }, new Map([["a", 1]]), [["a", 1]], "\ufffd", "\ud800", new Date(0), 2 ** 53, 2 ** 53 - 1,
    { __dask_tokenize__: () => 1 },
  ];
  const tokens = values.map((v) => tokenize(v));
  const seen = new Map<string, number>();
  tokens.forEach((t, i) => {
    assert.ok(!seen.has(t), `values[${i}] and values[${seen.get(t)}] share a token`);
    seen.set(t, i);
  });
  // and keys differ with the function reference, args split and kwargs
  const keys = [
    taskKey("t.js#inc", [1]), taskKey("u.js#inc", [1]), taskKey("t.js#inc", [1, 2]), taskKey("t.js#inc", [[1, 2]]),
    taskKey("t.js#inc", [1], { x: 1 }), taskKey("t.js#inc", [], { 0: 1 }), taskKey("t.js#inc", [tuple(1)]),
  ];
  assert.equal(new Set(keys).size, keys.length);
});

test("same value, same token: NaNs, kwargs omitted or empty, equal but distinct objects", () => {
  const nan2 = new DataView(new ArrayBuffer(8));
  nan2.setUint32(0, 0xfff80001); // a NaN with another payload and sign
  assert.equal(tokenize(nan2.getFloat64(0)), tokenize(NaN));
  assert.equal(taskKey("t.js#f", [1]), taskKey("t.js#f", [1], {}));
  assert.equal(tokenize({ a: [1, { b: 2 }] }), tokenize({ a: [1, { b: 2 }] }));
  const shared = [1, 2];
  assert.equal(tokenize([shared, shared]), tokenize([[1, 2], [1, 2]]), "shared (acyclic) references are fine");
  assert.equal(tokenize(Buffer.from([1, 2])), tokenize(new Uint8Array([1, 2])));
  assert.equal(tokenize(new Uint8Array([9, 1, 2, 9]).subarray(1, 3)), tokenize(new Uint8Array([1, 2])));
});

test("hostile keys: __proto__ and prototype-less objects are ordinary data", () => {
  const withProto = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as Record<string, unknown>;
  assert.notEqual(tokenize(withProto), tokenize({ a: 2 }));
  assert.deepEqual(decode(canonicalEncode(withProto)), ["O", [["S", "__proto__"], ["O", [["S", "x"], ["I", 1]]]], [["S", "a"], ["I", 2]]]);
  const bare = Object.assign(Object.create(null), { a: 2 }) as Record<string, unknown>;
  assert.equal(tokenize(bare), tokenize({ a: 2 }));
  assert.equal(({} as Record<string, unknown>).x, undefined, "no prototype pollution");
});

test("__dask_tokenize__ stands in for the object, and may itself call tokenize()", () => {
  class Future {
    key: string;
    constructor(key: string) { this.key = key; }
    __dask_tokenize__(): unknown { return tuple("future", this.key, tokenize(this.key)); }
  }
  assert.equal(tokenize(new Future("x-1")), tokenize(new Future("x-1")));
  assert.notEqual(tokenize(new Future("x-1")), tokenize(new Future("x-2")));
  assert.equal(taskKey("t.js#f", [new Future("x-1"), 2]), taskKey("t.js#f", [new Future("x-1"), 2]));
  // the outer encoding is unharmed by the nested tokenize() call
  assert.deepEqual(decode(canonicalEncode([new Future("a"), "after"])), norm([new Future("a"), "after"]));
});

// ---------------------------------------------------------------------------------------------
// Keys

test("taskKeys (one Wasm call) equals taskKey for each task", () => {
  fc.assert(
    fc.property(fc.array(fc.record({ fn: fc.constantFrom("tasks.js#inc", "wasm:k-1#add", "m.js#ns.mul"), args: fc.array(anyValue, { maxLength: 4 }), kwargs: fc.option(fc.dictionary(fc.string(), anyValue, { maxKeys: 3 }), { nil: undefined }) }), { maxLength: 30 }), (tasks) => {
      const keys = taskKeys(tasks as TaskSpecInput[]);
      assert.deepEqual(keys, tasks.map((t) => taskKey(t.fn, t.args, t.kwargs)));
    }),
    { numRuns: 200 },
  );
  const many = Array.from({ length: 5000 }, (_, i) => ({ fn: "tasks.js#inc", args: [i, `x-${i}`] }));
  const keys = taskKeys(many);
  assert.equal(new Set(keys).size, 5000);
  assert.equal(keys[4321], taskKey("tasks.js#inc", [4321, "x-4321"]));
  assert.deepEqual(taskKeys([]), []);
});

test("golden keys: the encoding and hashing are pinned across runs and runtimes", () => {
  // Computed once with format version 1 (2026-11-23) and pinned. If this fails, the encoding
  // changed: every key any client ever computed changes with it. Bump FORMAT_VERSION and re-pin.
  assert.equal(taskKey("tasks.js#inc", [1]), "inc-0ee6dcb43f1ef9ac60709fa1c6aa5953");
  assert.equal(taskKey("wasm:abc#add", [1, 2], { z: 1 }), "add-9aaa953aac2775e445bd67780ba5bfee");
  assert.equal(taskKey("tasks.js#resize", [tuple<unknown>("x", 0), { w: 640, h: 480 }], { mode: "fast" }), "resize-aa1ea0dc27831b4c668fb590b17e4af3");
  assert.equal(taskKey("tasks.js#sum", [[1.5, -0, NaN, -7, 2n ** 70n], new Float64Array([1, 2]), new Uint8Array([0, 255])]), "sum-dc289d1d0a062290f119bfd8afa6d4e6");
  assert.equal(taskKey("m.js#ns.f", ["é😀", null, undefined, true, new Map([[tuple<unknown>("k", 1), new Set(["b", "a"])]]), new Date(86_400_000)]), "f-b6515124bc138d6e291cb28164527629");
  assert.equal(tokenize(1), "dbc72da322862813083b9c114484c901");
  assert.equal(hex(canonicalEncode({ b: 1, a: [1.5, "x", -0, NaN, -5, 2n ** 70n, -3n] })),
    "014f025301614c0744000000000000f83f53017844000000000000008044000000000000f87f4a04420009000000000000000040420101035301624901");
});

test("funcName takes the export name, as dask's key_split takes the function's", () => {
  assert.equal(funcName("tasks.js#inc"), "inc");
  assert.equal(funcName("wasm:abc-123#add"), "add");
  assert.equal(funcName("./lib/m.js#ns.mul"), "mul");
  assert.equal(funcName("inc"), "inc");
  assert.equal(funcName("pkg/sub:run"), "run");
  assert.equal(funcName("my-func"), "my-func");
  for (const bad of ["", "m.js#", "m.js#ns."]) {
    assert.throws(() => funcName(bad), (e: unknown) => e instanceof TokenizeError && e.code === "DASK_ERR_TOKENIZE" && e.path === "fn");
  }
});

// ---------------------------------------------------------------------------------------------
// Errors

function throwsAt(fn: () => unknown, path: string, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DaskError && e instanceof TokenizeError, `a TokenizeError, got ${String(e)}`);
    assert.equal(e.code, "DASK_ERR_TOKENIZE");
    assert.equal(e.path, path);
    assert.match(e.reason, reason);
    assert.ok(e.message.includes(path), e.message);
    return true;
  });
}

test("values without a canonical encoding are coded errors naming their path", () => {
  class Point { x = 1; }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = [cyclic];
  const cyclicMap = new Map<unknown, unknown>();
  cyclicMap.set("m", cyclicMap);
  throwsAt(() => canonicalEncode(() => 1), "value", /function/);
  throwsAt(() => canonicalEncode({ a: [1, { "b c": Symbol("s") }] }), 'value.a[1]["b c"]', /symbol/);
  throwsAt(() => tokenize(1, [new Point()]), "values[1][0]", /instance of Point without __dask_tokenize__/);
  throwsAt(() => tokenize(new WeakMap()), "values[0]", /WeakMap/);
  throwsAt(() => tokenize(new DataView(new ArrayBuffer(2))), "values[0]", /DataView/);
  throwsAt(() => tokenize(Promise.resolve(1)), "values[0]", /Promise/);
  throwsAt(() => canonicalEncode(cyclic), "value.self[0]", /cycle/);
  throwsAt(() => canonicalEncode(cyclicMap), 'value.get("m")', /cycle/);
  throwsAt(() => canonicalEncode(new Map([[[Symbol.iterator], 1]])), "value.entries()[0][0][0]", /symbol/);
  throwsAt(() => canonicalEncode(new Set([1, () => 2])), "value.values()[1]", /function/);
  throwsAt(() => canonicalEncode({ __dask_tokenize__: () => { throw new Error("boom"); } }), "value.__dask_tokenize__()", /threw \(boom\)/);
  throwsAt(() => canonicalEncode({ __dask_tokenize__() { return this; } }), "value.__dask_tokenize__()", /cycle/);
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
  throwsAt(() => canonicalEncode(deep), "value" + "[0]".repeat(MAX_DEPTH), /deeper than/);
  throwsAt(() => taskKey("t.js#f", [1, 2, { g: Math.max }]), "args[2].g", /function \(max\)/);
  throwsAt(() => taskKey("t.js#f", [], { opt: new Point() }), "kwargs.opt", /Point/);
  throwsAt(() => taskKey("t.js#f", [], new Point() as unknown as Record<string, unknown>), "kwargs", /plain object/);
  throwsAt(() => taskKey("t.js#f", "x" as unknown as unknown[]), "args", /not an array/);
  throwsAt(() => taskKeys([{ fn: "t.js#f", args: [1] }, { fn: "t.js#f", args: [[Symbol()]] }]), "tasks[1].args[0][0]", /symbol/);
  throwsAt(() => taskKeys([{ fn: "t.js#", args: [] }]), "tasks[0].fn", /no name/);
  // and the shared encoder is still usable afterwards
  assert.equal(taskKey("tasks.js#inc", [1]), "inc-0ee6dcb43f1ef9ac60709fa1c6aa5953");
});
