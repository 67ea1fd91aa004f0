// msgpack codec: properties against @msgpack/msgpack (the oracle, STYLE.md §3), dask value
// mapping, minimal encoding checked against Python's msgpack, and hostile input. The whole suite
// runs once per backend (js, wasm), whatever DASK_WASM_BACKEND says.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode as refEncode, decode as refDecode } from "@msgpack/msgpack";
import { createCodec, DEFAULT_DECODE_LIMITS, Float64 } from "../../src/protocol/msgpack.ts";
import type { Backend } from "../../src/protocol/msgpack.ts";
import { WasmMsgpack, MSGPACK_ABI } from "../../src/wasm/msgpack.ts";
import { runPython } from "../helpers/env.ts";

/** Asserts `fn` throws a coded ProtocolError with `code`. */
function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, String(err));
    assert.equal((err as Error).name, "ProtocolError");
    return true;
  });
}

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

// Values both libraries represent identically: no -0 (theirs encodes it as int 0), no lone
// surrogates, no "__" keys (our Set/objectHook handling), integers within the safe range.
const plainKey = fc.string({ unit: "grapheme", maxLength: 12 }).filter((k) => !k.startsWith("__"));
const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
  fc.maxSafeInteger(),
  fc.maxSafeNat().map((n) => (n === 0 ? 0 : -n)), // never -0 here: theirs writes it as int 0
  fc.double({ noDefaultInfinity: false }).filter((d) => !Object.is(d, -0) && !Number.isInteger(d)),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "grapheme-ascii", minLength: 30, maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
);
const { common } = fc.letrec((tie) => ({
  common: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("arr"), tie("obj")),
  arr: fc.array(tie("common"), { maxLength: 20 }),
  obj: fc.dictionary(plainKey, tie("common"), { maxKeys: 20, noNullPrototype: true }),
}));

// Our own richer domain: Maps with tuple/int keys, Sets, bigints, Float64 boxes, -0.
const key = fc.oneof(fc.integer(), fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 3 }), fc.string({ maxLength: 6 }));
const { rich } = fc.letrec((tie) => ({
  rich: fc.oneof({ depthSize: "small" }, scalar, tie("big"), tie("arr"), tie("map"), tie("set"), fc.constant(-0)),
  big: fc.oneof(fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }), fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) })),
  arr: fc.array(tie("rich"), { maxLength: 8 }),
  map: fc.array(fc.tuple(key, tie("rich")), { minLength: 1, maxLength: 6 }).map((entries) => {
    // at least one non-string key so it must come back as a Map
    const m = new Map<unknown, unknown>([[0.5 as unknown, null]]);
    for (const [k, v] of entries) m.set(k, v);
    return m;
  }),
  set: fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 6 })), { maxLength: 6 }).map((xs) => new Set(xs)),
}));

for (const kind of ["js", "wasm"] as const satisfies readonly Backend[]) {
  const codec = createCodec(kind);
  const { decode, encode } = codec;

  describe(`msgpack (${kind})`, () => {
    it("reports its backend", () => {
      assert.equal(codec.backend, kind);
    });

    describe("properties vs @msgpack/msgpack", () => {
      it("their encode -> our decode", () => {
        fc.assert(fc.property(common, (v) => assert.deepStrictEqual(decode(refEncode(v)), refDecode(refEncode(v)))), { numRuns: 400 });
      });
      it("our encode -> their decode", () => {
        fc.assert(fc.property(common, (v) => assert.deepStrictEqual(refDecode(encode(v)), v)), { numRuns: 400 });
      });
      it("our encode is byte-identical to theirs on the common domain", () => {
        fc.assert(fc.property(common, (v) => assert.deepStrictEqual(encode(v), refEncode(v))), { numRuns: 400 });
      });
      it("our round trip (Maps with tuple keys, Sets, bigint, -0)", () => {
        fc.assert(fc.property(rich, (v) => assert.deepStrictEqual(decode(encode(v)), v)), { numRuns: 400 });
      });
      it("any byte string as a str payload: accepted iff valid UTF-8 (WHATWG fatal decoder)", () => {
        const td = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
        const bytesArb = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.array(fc.integer({ min: 0x7e, max: 0xf5 }), { maxLength: 40 }).map((a) => new Uint8Array(a)));
        fc.assert(
          fc.property(bytesArb, (payload) => {
            const msg = new Uint8Array([0xd9, payload.length, ...payload]);
            let want: string | undefined;
            try {
              want = td.decode(payload);
            } catch {
              want = undefined;
            }
            if (want === undefined) throwsCode(() => decode(msg), "DASK_ERR_MSGPACK_UTF8");
            else assert.equal(decode(msg), want);
          }),
          { numRuns: 2000 },
        );
      });
    });

    describe("dask value mapping", () => {
      it("nil/bool/ints/floats/str/bin", () => {
        assert.equal(decode(hex("c0")), null);
        assert.equal(decode(hex("c3")), true);
        assert.equal(decode(hex("c2")), false);
        assert.equal(decode(hex("ff")), -1);
        assert.equal(decode(hex("cf 001fffffffffffff")), 2 ** 53 - 1);
        assert.equal(decode(hex("cf 0020000000000000")), 2n ** 53n);
        assert.equal(decode(hex("cf 0020000000000001")), 2n ** 53n + 1n);
        assert.equal(decode(hex("d3 8000000000000000")), -(2n ** 63n));
        assert.equal(decode(hex("ca 3fc00000")), 1.5);
        assert.equal(decode(hex("a3 e282ac")), "€");
        assert.equal(decode(hex("a3 efbbbf")), "\ufeff", "a BOM is data, not stripped");
        assert.deepEqual(decode(hex("c4 02 0102")), new Uint8Array([1, 2]));
        assert.deepEqual(encode(undefined), hex("c0"));
        assert.deepEqual(encode(Buffer.from([7])), hex("c4 01 07"));
      });
      it("string-keyed maps -> plain objects; any other key -> Map", () => {
        assert.deepStrictEqual(decode(hex("81 a1 61 01")), { a: 1 });
        const m = decode(encode(new Map<unknown, unknown>([["s", 1], [["x", 0], 2], [3, 4]]))) as Map<unknown, unknown>;
        assert.ok(m instanceof Map);
        assert.deepStrictEqual([...m.entries()], [["s", 1], [["x", 0], 2], [3, 4]]);
        // a bin key (Python bytes) also forces a Map
        assert.ok(decode(hex("81 c4 01 61 01")) instanceof Map);
      });
      it("sets: {'__Set__': true, 'as-list': [...]} both ways", () => {
        assert.deepEqual(encode(new Set(["x"])), hex("82 a7 5f5f5365745f5f c3 a7 61732d6c697374 91 a1 78"));
        assert.deepStrictEqual(decode(hex("82 a7 5f5f5365745f5f c3 a7 61732d6c697374 92 a1 78 01")), new Set(["x", 1]));
        // not exactly the shape: stays a map (and goes to objectHook)
        assert.deepStrictEqual(decode(hex("81 a7 5f5f5365745f5f c3")), { __Set__: true });
      });
      it("objectHook sees maps whose first key starts with '__', after their entries", () => {
        const seen: unknown[] = [];
        const hook = (o: Record<string, unknown>): unknown => {
          seen.push(o);
          return `frame ${o.__Serialized__ as number}`;
        };
        const msg = encode({ op: "x", value: { __Serialized__: 2 }, other: { a: { __Pickled__: 3 } }, plain: { a__: 1 } });
        assert.deepStrictEqual(decode(msg, { objectHook: hook }), { op: "x", value: "frame 2", other: { a: "frame undefined" }, plain: { a__: 1 } });
        assert.deepStrictEqual(seen, [{ __Serialized__: 2 }, { __Pickled__: 3 }]);
      });
      it("objectHook may decode re-entrantly", () => {
        const inner = encode({ k: [1, 2, 3] });
        const out = decode(encode([{ __Serialized__: 1 }, "after"]), { objectHook: () => decode(inner) });
        assert.deepStrictEqual(out, [{ k: [1, 2, 3] }, "after"]);
      });
      it("preserveFloats keeps integer-valued float64 boxed, so re-encoding is identical", () => {
        const bytes = hex("93 cb 3ff0000000000000 cb 8000000000000000 cb 3ff8000000000000");
        const v = decode(bytes, { preserveFloats: true }) as unknown[];
        assert.ok(v[0] instanceof Float64 && v[0].value === 1);
        assert.ok(v[1] instanceof Float64 && Object.is(v[1].value, -0));
        assert.equal(v[2], 1.5);
        assert.deepEqual(encode(v), bytes);
        assert.deepEqual(decode(bytes), [1, -0, 1.5]);
        assert.deepEqual(encode(decode(bytes)), hex("93 01 cb 8000000000000000 cb 3ff8000000000000"));
      });
    });

    describe("encoder", () => {
      it("minimal headers, byte-identical to Python msgpack.dumps(use_bin_type=True)", () => {
        const ints = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1];
        const lens = [0, 31, 32, 255, 256, 65535, 65536];
        const values: unknown[] = [
          ...ints,
          ...lens.map((n) => "a".repeat(n)),
          ...lens.map((n) => "é".repeat(n >> 1)),
          ...lens.map((n) => new Uint8Array(n).fill(7)),
          ...[0, 15, 16, 65535, 65536].map((n) => new Array(n).fill(0)),
          ...[0, 15, 16, 65536].map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
          [0.5, -0, 1e300, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60],
          [2n ** 64n - 1n, -(2n ** 63n), 5n, -(2n ** 40n)],
          { nested: [{ a: null, b: true, c: false }], "tuple-ish": [["x", 1], 2] },
        ];
        const ours = values.map((v) => Buffer.from(encode(v)).toString("hex"));
        // Python gets the same values as JSON-ish description (bytes/bigint/non-finite tagged).
        const describeValue = (v: unknown): unknown => {
          if (v instanceof Uint8Array) return { $b: v.length };
          if (typeof v === "bigint") return { $i: v.toString() };
          if (typeof v === "number" && !Number.isFinite(v)) return { $f: String(v) };
          if (typeof v === "number" && Object.is(v, -0)) return { $f: "-0.0" };
          if (typeof v === "number" && !Number.isSafeInteger(v)) return { $f: String(v) };
          if (typeof v === "number" && !Number.isInteger(v)) return { $f: String(v) };
          if (Array.isArray(v)) return v.map(describeValue);
          if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, describeValue(x)]));
          return v;
        };
        const py = `
import json, sys, msgpack
def conv(v):
    if isinstance(v, dict):
        if set(v) == {"$b"}: return bytes([7]) * v["$b"]
        if set(v) == {"$i"}: return int(v["$i"])
        if set(v) == {"$f"}: return float(v["$f"])
        return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
vals = json.load(sys.stdin)
print(json.dumps([msgpack.dumps(conv(v), use_bin_type=True).hex() for v in vals]))
`;
        const theirs = JSON.parse(runPython(py, JSON.stringify(values.map(describeValue))).toString()) as string[];
        assert.equal(theirs.length, ours.length);
        for (let i = 0; i < ours.length; i++) assert.equal(ours[i], theirs[i], `value #${i}`);
      });
      it("typed arrays other than Uint8Array, class instances, functions: ERR_MSGPACK_UNSUPPORTED unless replaced", () => {
        throwsCode(() => encode(new Int32Array(2)), "DASK_ERR_MSGPACK_UNSUPPORTED");
        throwsCode(() => encode({ d: new Date(0) }), "DASK_ERR_MSGPACK_UNSUPPORTED");
        throwsCode(() => encode(() => 1), "DASK_ERR_MSGPACK_UNSUPPORTED");
        throwsCode(() => encode(Symbol("s")), "DASK_ERR_MSGPACK_UNSUPPORTED");
        throwsCode(() => encode(2n ** 64n), "DASK_ERR_MSGPACK_UNSUPPORTED");
        throwsCode(() => encode(-(2n ** 63n) - 1n), "DASK_ERR_MSGPACK_UNSUPPORTED");
        const replacer = (o: object): unknown => (o instanceof Int32Array ? [...o] : o instanceof Date ? o.toISOString() : o);
        assert.deepStrictEqual(decode(encode({ a: new Int32Array([1, -2]), d: new Date(0) }, { replacer })), { a: [1, -2], d: "1970-01-01T00:00:00.000Z" });
        // a replacer that returns another unsupported object is not called again
        throwsCode(() => encode(new Date(0), { replacer: (o) => o }), "DASK_ERR_MSGPACK_UNSUPPORTED");
      });
      it("a cycle is a coded error, not a stack overflow", () => {
        const a: unknown[] = [];
        a.push(a);
        throwsCode(() => encode(a), "DASK_ERR_MSGPACK_TOO_DEEP");
      });
      it("large payloads grow past the scratch buffer and later calls are unaffected", () => {
        const big = new Uint8Array(3 << 20).map((_, i) => i & 0xff);
        const bytes = encode({ data: big });
        const small = encode({ x: 1 });
        assert.deepStrictEqual((decode(bytes) as { data: Uint8Array }).data, big);
        assert.deepStrictEqual(decode(small), { x: 1 });
      });
    });

    describe("hostile input", () => {
      it("each limit has its own code", () => {
        throwsCode(() => decode(encode("abcd"), { maxStrBytes: 3 }), "DASK_ERR_MSGPACK_STR_TOO_LARGE");
        assert.equal(decode(encode("abc"), { maxStrBytes: 3 }), "abc");
        // map keys too (they take the key-cache path; the differential fuzz below found this)
        throwsCode(() => decode(hex("81 a2 6162 01"), { maxStrBytes: 1 }), "DASK_ERR_MSGPACK_STR_TOO_LARGE");
        throwsCode(() => decode(encode(new Uint8Array(4)), { maxBinBytes: 3 }), "DASK_ERR_MSGPACK_BIN_TOO_LARGE");
        throwsCode(() => decode(encode([1, 2, 3, 4]), { maxArrayLength: 3 }), "DASK_ERR_MSGPACK_ARRAY_TOO_LONG");
        throwsCode(() => decode(encode({ a: 1, b: 2 }), { maxMapLength: 1 }), "DASK_ERR_MSGPACK_MAP_TOO_LONG");
        throwsCode(() => decode(encode([[1]]), { maxDepth: 1 }), "DASK_ERR_MSGPACK_TOO_DEEP");
        assert.deepEqual(decode(encode([[1]]), { maxDepth: 2 }), [[1]]);
      });
      it("a limit that is not a number >= 0 is a ConfigError naming the option", () => {
        assert.throws(() => decode(hex("c0"), { maxDepth: -1 }), /options\.maxDepth/);
        assert.throws(() => decode(hex("c0"), { maxStrBytes: Number.NaN }), (e: unknown) => (e as { code?: string }).code === "DASK_ERR_CONFIG");
        assert.equal(decode(hex("c0"), { maxMapLength: Number.POSITIVE_INFINITY }), null);
      });
      it("nesting just under / at / over the default maxDepth", () => {
        const depth = DEFAULT_DECODE_LIMITS.maxDepth;
        const nested = (n: number, open: number): Uint8Array => {
          const b = new Uint8Array(n + 1).fill(open);
          b[n] = 0xc0;
          return b;
        };
        // arrays of one element: 0x91 ... 0xc0; maps: {nil: ...} would be a Map, so use {"a": ...}
        assert.doesNotThrow(() => decode(nested(depth, 0x91)));
        throwsCode(() => decode(nested(depth + 1, 0x91)), "DASK_ERR_MSGPACK_TOO_DEEP");
        const maps = (n: number): Uint8Array => new Uint8Array([...Array.from({ length: n }, () => [0x81, 0xa1, 0x61]).flat(), 0x01]);
        assert.doesNotThrow(() => decode(maps(depth)));
        throwsCode(() => decode(maps(depth + 1)), "DASK_ERR_MSGPACK_TOO_DEEP");
        // far beyond any stack: still a coded error (no recursion before the check)
        throwsCode(() => decode(nested(200_000, 0x91)), "DASK_ERR_MSGPACK_TOO_DEEP");
        assert.doesNotThrow(() => decode(nested(2000, 0x91), { maxDepth: 2000 }));
        // a maxDepth beyond the JS stack still ends in the coded error, not a RangeError
        throwsCode(() => decode(nested(100_000, 0x91), { maxDepth: 1e6 }), "DASK_ERR_MSGPACK_TOO_DEEP");
      });
      it("__proto__ keys become own properties; no prototype changes, no pollution", () => {
        const bytes = encode(new Map<unknown, unknown>([["__proto__", { polluted: 1 }], ["x", { __proto__: 1 }]]));
        // the Map above has only string keys, so it decodes to a plain object
        const v = decode(bytes) as Record<string, unknown>;
        assert.equal(Object.getPrototypeOf(v), Object.prototype);
        assert.ok(Object.hasOwn(v, "__proto__"));
        assert.deepStrictEqual(Object.getOwnPropertyDescriptor(v, "__proto__")?.value, { polluted: 1 });
        assert.equal((v as { polluted?: unknown }).polluted, undefined);
        assert.equal(({} as { polluted?: unknown }).polluted, undefined);
        assert.equal(Object.getPrototypeOf(v.x), Object.prototype);
        // and it survives a round trip as an own key
        assert.deepEqual(encode(v), bytes);
      });
      it("0xc1 is refused", () => {
        throwsCode(() => decode(hex("c1")), "DASK_ERR_MSGPACK_INVALID");
        throwsCode(() => decode(hex("92 01 c1")), "DASK_ERR_MSGPACK_INVALID");
      });
      it("every ext type (incl. timestamp -1) is refused", () => {
        for (const h of ["d4 01 00", "d5 01 0000", "d6 ff 00000000", "d7 ff 0000000000000000", "d8 01" + "00".repeat(16), "c7 01 01 00", "c8 0001 01 00", "c9 00000001 01 00"]) {
          throwsCode(() => decode(hex(h)), "DASK_ERR_MSGPACK_EXT");
        }
      });
      it("invalid UTF-8 in str: overlong, surrogate, > U+10FFFF, stray continuation, cut sequence", () => {
        for (const h of ["a2 c080", "a3 eda080", "a4 f4908080", "a1 80", "a2 e282", "a1 ff", "a4 f0828282"]) {
          throwsCode(() => decode(hex(h)), "DASK_ERR_MSGPACK_UTF8");
        }
        // also as a map key (keys take the key-cache path), after a valid key of the same length
        assert.deepStrictEqual(decode(hex("81 a2 c3a9 01")), { "é": 1 });
        throwsCode(() => decode(hex("81 a2 c080 01")), "DASK_ERR_MSGPACK_UTF8");
        // the same bytes as bin are fine
        assert.deepEqual(decode(hex("c4 02 c080")), hex("c080"));
      });
      it("truncated at every byte: every strict prefix is DASK_ERR_MSGPACK_TRUNCATED", () => {
        const msg = encode({
          op: "compute-task",
          key: ["x", 1],
          n: [0, 200, 70000, 2 ** 40, -5, -200, -70000, -(2 ** 40), 0.5, 2n ** 63n],
          s: "é".repeat(40) + "a".repeat(300),
          b: new Uint8Array(300),
          m: new Map<unknown, unknown>([[1, 2]]),
          t: new Set([true, false, null]),
        });
        for (let i = 0; i < msg.length; i++) throwsCode(() => decode(msg.subarray(0, i)), "DASK_ERR_MSGPACK_TRUNCATED");
        assert.doesNotThrow(() => decode(msg));
      });
      it("trailing bytes", () => {
        throwsCode(() => decode(hex("01 02")), "DASK_ERR_MSGPACK_TRAILING");
        throwsCode(() => decode(hex("90 c0")), "DASK_ERR_MSGPACK_TRAILING");
      });
      it("lengths claiming 4 GiB in a 10-byte buffer fail fast, without allocating the claim", () => {
        const before = process.memoryUsage().arrayBuffers;
        const huge = { maxStrBytes: 2 ** 32, maxBinBytes: 2 ** 32, maxArrayLength: 2 ** 32, maxMapLength: 2 ** 32 };
        const cases: Array<[string, string]> = [
          ["db ffffffff 6161 6161 61", "DASK_ERR_MSGPACK_STR_TOO_LARGE"],
          ["c6 ffffffff 0000 0000 00", "DASK_ERR_MSGPACK_BIN_TOO_LARGE"],
          ["dd ffffffff 0000 0000 00", "DASK_ERR_MSGPACK_ARRAY_TOO_LONG"],
          ["df ffffffff 0000 0000 00", "DASK_ERR_MSGPACK_MAP_TOO_LONG"],
        ];
        for (const [h, code] of cases) {
          throwsCode(() => decode(hex(h)), code); // default limits
          throwsCode(() => decode(hex(h), huge), "DASK_ERR_MSGPACK_TRUNCATED"); // limits out of the way
          throwsCode(() => decode(hex("91" + h), huge), "DASK_ERR_MSGPACK_TRUNCATED");
        }
        // nothing of the claimed size was allocated (4 GiB would be visible here or would have failed)
        assert.ok(process.memoryUsage().arrayBuffers - before < 256 << 20);
      });
      it("empty input is truncated", () => {
        throwsCode(() => decode(new Uint8Array(0)), "DASK_ERR_MSGPACK_TRUNCATED");
      });
      it("decodes from a view with a non-zero byteOffset", () => {
        const inner = encode({ a: [1.5, 2n ** 63n, "x"] });
        const outer = new Uint8Array(inner.length + 7);
        outer.set(inner, 3);
        assert.deepStrictEqual(decode(outer.subarray(3, 3 + inner.length)), { a: [1.5, 2n ** 63n, "x"] });
      });
    });
  });
}

describe("msgpack module-level functions", () => {
  it("use the backend DASK_WASM_BACKEND names (js when unset)", async () => {
    const m = await import("../../src/protocol/msgpack.ts");
    const want = process.env.DASK_WASM_BACKEND || "js";
    assert.equal(m.backend(), want);
    assert.deepStrictEqual(m.decode(m.encode({ op: "ping", n: [1, 2n ** 63n] })), { op: "ping", n: [1, 2n ** 63n] });
  });
});

describe("msgpack backends agree on arbitrary bytes (kernel vs TS twin)", () => {
  const js = createCodec("js");
  const wasm = createCodec("wasm");
  /** The value, or the error code, a backend produces. */
  const outcome = (c: typeof js, b: Uint8Array, o?: object): unknown => {
    try {
      return { value: c.decode(b, o) };
    } catch (e) {
      return { code: (e as { code?: string }).code ?? String(e) };
    }
  };
  it("random bytes and mutated valid messages: same value or same error code", () => {
    const mutated = fc
      .tuple(common, fc.nat(), fc.integer({ min: 0, max: 255 }))
      .map(([v, at, byte]) => {
        const b = js.encode(v).slice();
        b[at % b.length] = byte;
        return b;
      });
    const limits = fc.record({ maxDepth: fc.integer({ min: 0, max: 4 }), maxStrBytes: fc.integer({ min: 0, max: 40 }), maxArrayLength: fc.integer({ min: 0, max: 5 }), maxMapLength: fc.integer({ min: 0, max: 5 }), maxBinBytes: fc.integer({ min: 0, max: 40 }) });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated), fc.option(limits), (b, o) => {
        assert.deepStrictEqual(outcome(wasm, b, o ?? undefined), outcome(js, b, o ?? undefined));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("msgpack Wasm contract", () => {
  it("the kernel's ABI matches the binding and the core exports the kernel", () => {
    const w = new WasmMsgpack();
    assert.equal(w.abiVersion(), MSGPACK_ABI);
  });
  it("one value of every tape tag decodes the same on both backends", () => {
    const bytes = hex("9d c0 c2 c3 05 ce ffffffff d2 80000000 cf ffffffffffffffff d3 8000000000000000 ca 3fc00000 cb 3ff8000000000000 a1 61 a2 c3a9 c4 01 ff");
    const a = createCodec("wasm").decode(hex("92" + Buffer.from(bytes).toString("hex") + "80"));
    const b = createCodec("js").decode(hex("92" + Buffer.from(bytes).toString("hex") + "80"));
    assert.deepStrictEqual(a, b);
    assert.deepStrictEqual(b, [[null, false, true, 5, 4294967295, -2147483648, 2n ** 64n - 1n, -(2n ** 63n), 1.5, 1.5, "a", "é", new Uint8Array([0xff])], {}]);
  });
  it("an unknown DASK_WASM_BACKEND is refused with a coded ConfigError", async () => {
    const { createCodec: cc } = await import("../../src/protocol/msgpack.ts");
    const prev = process.env.DASK_WASM_BACKEND;
    process.env.DASK_WASM_BACKEND = "fast";
    try {
      assert.throws(() => cc(), (e: unknown) => (e as { code?: string }).code === "DASK_ERR_CONFIG");
    } finally {
      if (prev === undefined) delete process.env.DASK_WASM_BACKEND;
      else process.env.DASK_WASM_BACKEND = prev;
    }
  });
});
