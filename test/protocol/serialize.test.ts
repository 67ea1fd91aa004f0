// Serialization layer (src/protocol/serialize.ts): dumps/loads placeholders, serializer families,
// collections, compression, shards, relaying, and every malformed-offset path. Real captures from
// vectors-2022.12 (0031, 0042, 0059, 0061) anchor the format; the rest are hand-built headers.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DaskError } from "../../src/errors.ts";
import { decode, encode } from "../../src/protocol/msgpack.ts";
import { compressBlock } from "../../src/protocol/lz4.ts";
import {
  BYTES_TYPE_PICKLE,
  NdArray,
  Pickled,
  Serialize,
  Serialized,
  deserialize,
  dumps,
  loads,
  maybeCompress,
  serialize,
  toSerialize,
} from "../../src/protocol/serialize.ts";
import { NDARRAY_TYPE_PICKLE } from "../../src/protocol/numpy.ts";
import { isTuple, tuple } from "../../src/protocol/values.ts";
import { VECTORS_2022, vectorFiles, splitWireFrames, errorCode, noise } from "../helpers/env.ts";

const enc = new TextEncoder();

const code = (fn: () => unknown): string => errorCode(fn);

/** One captured TCP message -> frames (independent parse, test/helpers/env.ts). */
function vectorFrames(prefix: string): Uint8Array[] {
  const file = vectorFiles(VECTORS_2022).find((v) => v.name.startsWith(prefix));
  assert.ok(file, `vector ${prefix}`);
  return splitWireFrames(file.bytes);
}

// --- real captures --------------------------------------------------------------------------

test("vec 0031 / 0042: get_data replies with a pickled int load as numbers", () => {
  assert.deepEqual(loads(vectorFrames("0031_")), { status: "OK", data: { x: 2 } });
  assert.deepEqual(loads(vectorFrames("0042_")), { status: "OK", data: { y: 12 } });
});

test("vec 0059 / 0061: scatter of bytes, a pickled int and a float64 array", () => {
  for (const prefix of ["0059_", "0061_"]) {
    const msg = loads(vectorFrames(prefix)) as { data: Record<string, unknown> };
    const values = Object.entries(msg.data).sort(([a], [b]) => a.localeCompare(b));
    assert.deepEqual(
      values.map(([k]) => k.split("-")[0]),
      ["bytes", "int", "ndarray"],
    );
    assert.deepEqual(values[0]![1], enc.encode("hello"));
    assert.equal(values[1]![1], 123);
    assert.deepEqual(values[2]![1], Float64Array.from([0, 1, 2, 3]));
  }
});

test("vec 0059 -> 0061: relaying Serialized values re-emits the sub-frames byte-identical", () => {
  // The scheduler received 0059 and sent the same three values on as 0061 (§4.3).
  const original = vectorFrames("0059_");
  const relayed = loads(original, { deserialize: false }) as { data: Record<string, unknown> };
  for (const v of Object.values(relayed.data)) assert.ok(v instanceof Serialized);
  const again = dumps({ op: "update_data", data: relayed.data, report: false, reply: true });
  assert.equal(again.length, original.length);
  for (let i = 1; i < original.length; i++) assert.deepEqual(again[i], original[i], `frame ${i}`);
  const scheduler = vectorFrames("0061_");
  for (let i = 1; i < scheduler.length; i++) assert.deepEqual(again[i], scheduler[i], `frame ${i} vs 0061`);
});

// --- serialize: the JS -> Python type mapping --------------------------------------------------

test("serialize: bytes use the dask 'bytes' header with Python's type pickle", () => {
  const { header, frames } = serialize(enc.encode("hi"));
  assert.deepEqual(header, { serializer: "dask", type: "bytes", "type-serialized": BYTES_TYPE_PICKLE, "sub-header": {} });
  assert.deepEqual(frames, [enc.encode("hi")]);
  assert.deepEqual(serialize(new ArrayBuffer(3)).frames[0], new Uint8Array(3));
});

test("serialize: typed arrays and NdArray use the numpy header", () => {
  const { header, frames } = serialize(Int32Array.from([1, 2]));
  assert.equal(header["type"], "numpy.ndarray");
  assert.deepEqual(header["type-serialized"], NDARRAY_TYPE_PICKLE);
  assert.equal(frames[0]!.byteLength, 8);
  const nd = serialize(new NdArray(new Float32Array(6), [3, 2]));
  assert.deepEqual((nd.header["sub-header"] as Record<string, unknown>)["shape"], [3, 2]);
});

test("serialize: Array -> list, tuple() -> tuple, Set -> set, Map/object -> dict collections", () => {
  const list = serialize([1, "a"]);
  assert.deepEqual(list.header, {
    "sub-headers": [{ serializer: "msgpack" }, { serializer: "msgpack" }],
    "is-collection": true,
    "frame-lengths": [1, 1],
    "type-serialized": "list",
  });
  assert.deepEqual(list.frames, [encode(1), encode("a")]);
  assert.equal(serialize(tuple(1, 2)).header["type-serialized"], "tuple");
  assert.equal(serialize(new Set([1])).header["type-serialized"], "set");
  const dict = serialize({ a: 1, b: enc.encode("x") });
  assert.equal(dict.header["type-serialized"], "dict");
  const subs = dict.header["sub-headers"] as Array<Record<string, unknown>>;
  assert.deepEqual(subs.map((h) => [h["key"], h["serializer"]]), [["a", "msgpack"], ["b", "dask"]]);
  const map = serialize(new Map<unknown, unknown>([[tuple<unknown>("x", 1), 5]]));
  assert.deepEqual((map.header["sub-headers"] as Array<Record<string, unknown>>)[0]!["key"], ["x", 1]);
});

test("serialize: nested plain values are one frame (scalars msgpack, containers with lists a data pickle); typed arrays and Sets get their own header", () => {
  const plain = serialize([[1, 2], { a: [3] }, 7, "s"]);
  assert.deepEqual(plain.header["frame-lengths"], [1, 1, 1, 1]);
  const subs0 = plain.header["sub-headers"] as Array<Record<string, unknown>>;
  assert.deepEqual(subs0.map((h) => h["serializer"]), ["pickle", "pickle", "msgpack", "msgpack"]);
  assert.deepEqual(deserialize(plain.header, plain.frames), [[1, 2], { a: [3] }, 7, "s"]);
  const mixed = serialize([[1, Float64Array.from([2])], new Set(["s"])]);
  const subs = mixed.header["sub-headers"] as Array<Record<string, unknown>>;
  assert.equal(subs[0]!["type-serialized"], "list");
  assert.equal(subs[1]!["type-serialized"], "set");
  assert.deepEqual(deserialize(mixed.header, mixed.frames), [[1, Float64Array.from([2])], new Set(["s"])]);
});

test("serialize: scalars and Serialized pass through; unmsgpackable values become 'error'", () => {
  assert.deepEqual(serialize(42), { header: { serializer: "msgpack" }, frames: [encode(42)] });
  const s = new Serialized({ serializer: "pickle", writeable: [] }, [Uint8Array.from([0x80, 5, 0x4b, 1, 0x2e])]);
  assert.deepEqual(serialize(s), { header: s.header, frames: s.frames });
  assert.deepEqual(serialize(new Serialize("v")).frames, [encode("v")]);
  const err = serialize(new (class Widget {})());
  assert.equal(err.header["serializer"], "error");
  assert.match(new TextDecoder().decode(err.frames[0]), /Could not serialize object of type Widget/);
  assert.equal(code(() => deserialize(err.header, err.frames)), "DASK_ERR_REMOTE_SERIALIZE");
});

test("serialize -> deserialize round trip keeps list/tuple/set/dict shapes (property)", () => {
  const scalar = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true }), fc.uint8Array({ maxLength: 8 }));
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: "small" }, scalar, fc.array(tie("v"), { maxLength: 4 }), fc.dictionary(fc.string(), tie("v"), { maxKeys: 3, noNullPrototype: true })),
  })).v;
  fc.assert(
    fc.property(fc.array(value, { maxLength: 5 }), fc.dictionary(fc.string(), value, { maxKeys: 4, noNullPrototype: true }), (list, dict) => {
      assert.deepEqual(deserialize(...(Object.values(serialize(list)) as [Record<string, unknown>, Uint8Array[]])), list);
      const d = serialize(dict);
      assert.deepEqual(deserialize(d.header, d.frames), dict);
      const t = serialize(tuple(...list));
      assert.ok(isTuple(deserialize(t.header, t.frames)));
    }),
    { numRuns: 200 },
  );
});

// --- deserialize: families, compression, shards ------------------------------------------------

test("deserialize: lz4 frames are decompressed per the compression list", () => {
  const payload = enc.encode("abc".repeat(5000));
  const header = { serializer: "dask", type: "bytes", "sub-header": {}, compression: ["lz4"] };
  assert.deepEqual(deserialize(header, [compressBlock(payload)]), payload);
  assert.equal(code(() => deserialize(header, [payload])), "DASK_ERR_LZ4_CORRUPT"); // "abca" as a size prefix
  assert.equal(code(() => deserialize(header, [compressBlock(payload)], { maxDecompressedBytes: 14_999 })), "DASK_ERR_LZ4_TOO_LARGE");
  assert.equal(code(() => deserialize({ ...header, compression: ["zstd"] }, [payload])), "DASK_ERR_COMPRESSION_UNSUPPORTED");
  assert.equal(code(() => deserialize({ ...header, compression: [null, null] }, [payload])), "DASK_ERR_SERIALIZED_FRAMES");
});

test("deserialize: split shards are merged (split-num-sub-frames / split-offsets)", () => {
  const a = Float64Array.from([1, 2, 3, 4]);
  const bytes = new Uint8Array(a.buffer);
  const { header } = serialize(a);
  const split = { ...header, "split-num-sub-frames": [3], "split-offsets": [0], compression: [null, "lz4", null] };
  const shards = [bytes.subarray(0, 5), compressBlock(bytes.subarray(5, 20)), bytes.subarray(20)];
  assert.deepEqual(deserialize(split, shards), a);
  assert.equal(code(() => deserialize({ ...split, "split-offsets": [1] }, shards)), "DASK_ERR_SERIALIZED_FRAMES");
  assert.equal(code(() => deserialize({ ...split, "split-offsets": [0, 1] }, shards)), "DASK_ERR_SERIALIZED_FRAMES");
  assert.equal(code(() => deserialize({ ...split, "split-num-sub-frames": [-1] }, shards)), "DASK_ERR_SERIALIZED_FRAMES");
});

test("deserialize: pickle family goes through the pickle reader with out-of-band buffers", () => {
  assert.equal(deserialize({ serializer: "pickle", writeable: [] }, [Uint8Array.from([0x80, 5, 0x4b, 0x2a, 0x2e])]), 42);
  // NEXT_BUFFER (0x97) takes frame 1
  assert.deepEqual(deserialize({ serializer: "pickle", writeable: [false] }, [Uint8Array.from([0x80, 5, 0x97, 0x2e]), Uint8Array.from([9, 8])]), Uint8Array.from([9, 8]));
  assert.equal(code(() => deserialize({ serializer: "pickle" }, [])), "DASK_ERR_SERIALIZED_FRAMES");
});

test("deserialize: unknown families, unknown dask types and unsupported numpy stay Serialized", () => {
  const unknown = deserialize({ serializer: "cuda", x: 1, compression: [null] }, [Uint8Array.from([1])]);
  assert.ok(unknown instanceof Serialized);
  assert.deepEqual(unknown.header, { serializer: "cuda", x: 1 });
  assert.ok(deserialize({ serializer: "dask", type: "pandas.DataFrame" }, []) instanceof Serialized);
  const objArray = deserialize({ serializer: "dask", type: "numpy.ndarray", "sub-header": { pickle: true } }, [new Uint8Array(2)]);
  assert.ok(objArray instanceof Serialized);
  assert.equal(code(() => deserialize({ serializer: "dask", type: "numpy.ndarray" }, [new Uint8Array(8)])), "DASK_ERR_SERIALIZED_FRAMES");
});

test("deserialize: malformed collections are coded errors; dicts with non-string keys are Maps", () => {
  const h = { "is-collection": true, "type-serialized": "list", "sub-headers": [{ serializer: "msgpack" }], "frame-lengths": [2] };
  assert.equal(code(() => deserialize(h, [encode(1)])), "DASK_ERR_SERIALIZED_FRAMES");
  assert.equal(code(() => deserialize({ ...h, "frame-lengths": [1, 1] }, [encode(1)])), "DASK_ERR_SERIALIZED_FRAMES");
  assert.equal(code(() => deserialize({ ...h, "type-serialized": "frozenset", "frame-lengths": [1] }, [encode(1)])), "DASK_ERR_SERIALIZED_FRAMES");
  assert.equal(code(() => deserialize({ ...h, "sub-headers": [7], "frame-lengths": [1] }, [encode(1)])), "DASK_ERR_SERIALIZED_FRAMES");
  const dict = deserialize(
    { "is-collection": true, "type-serialized": "dict", "sub-headers": [{ serializer: "msgpack", key: 1 }, { serializer: "msgpack", key: "b" }], "frame-lengths": [1, 1] },
    [encode("one"), encode("bee")],
  );
  assert.ok(dict instanceof Map);
  assert.deepEqual([...dict], [[1, "one"], ["b", "bee"]]);
  const proto = deserialize({ "is-collection": true, "type-serialized": "dict", "sub-headers": [{ serializer: "msgpack", key: "__proto__" }], "frame-lengths": [1] }, [encode(1)]) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ["__proto__"]);
});

// --- maybeCompress and dumps ---------------------------------------------------------------

test("maybeCompress: small, incompressible and barely compressible frames stay raw", () => {
  assert.deepEqual(maybeCompress(new Uint8Array(9_999), "lz4")[0], null);
  assert.deepEqual(maybeCompress(new Uint8Array(10_000), "lz4")[0], "lz4");
  assert.equal(maybeCompress(noise(200_000), "lz4")[0], null);
  assert.equal(maybeCompress(new Uint8Array(200_000), null)[0], null);
  // Half noise, half zeros in big blocks: the evenly spaced samples see both, the result pays.
  const half = noise(200_000);
  half.fill(0, 0, 120_000);
  const [c, out] = maybeCompress(half, "lz4");
  assert.equal(c, "lz4");
  assert.ok(out.length <= 0.9 * half.length);
  // 95 % noise: the sample shrinks by less than 10 %, so nothing is compressed.
  const mostlyNoise = noise(200_000);
  for (let i = 0; i < mostlyNoise.length; i += 20) mostlyNoise[i] = 0;
  assert.equal(maybeCompress(mostlyNoise, "lz4")[0], null);
});

test("dumps: placeholders in visiting order, sub-header with num-sub-frames and split info", () => {
  const frames = dumps({ op: "x", a: toSerialize(enc.encode("A")), b: [toSerialize(7)] });
  assert.equal(frames.length, 5);
  assert.deepEqual(decode(frames[0]!), { op: "x", a: { __Serialized__: 1 }, b: [{ __Serialized__: 3 }] });
  const sub = decode(frames[1]!) as Record<string, unknown>;
  assert.deepEqual(sub["num-sub-frames"], 1);
  assert.deepEqual(sub["split-num-sub-frames"], [1]);
  assert.deepEqual(sub["split-offsets"], [0]);
  assert.deepEqual(sub["compression"], [null]);
  assert.deepEqual(frames[2], enc.encode("A"));
  assert.deepEqual(decode(frames[4]!), 7);
});

test("dumps: large frames are sharded at shardBytes and compressed only when it pays", () => {
  const zeros = new Uint8Array(95_000);
  const rand = noise(50_000);
  const frames = dumps({ z: toSerialize(zeros), r: toSerialize(rand) }, { compression: "lz4", shardBytes: 30_000 });
  const subZ = decode(frames[1]!) as Record<string, unknown>;
  assert.deepEqual(subZ["split-num-sub-frames"], [4]);
  assert.deepEqual(subZ["compression"], ["lz4", "lz4", "lz4", null]); // the last shard (5,000 bytes) is below 10,000
  const subR = decode(frames[6]!) as Record<string, unknown>;
  assert.deepEqual(subR["split-num-sub-frames"], [2]);
  assert.deepEqual(subR["compression"], [null, null]);
  const back = loads(frames) as { z: Uint8Array; r: Uint8Array };
  assert.deepEqual(back.z, zeros);
  assert.deepEqual(back.r, rand);
});

test("dumps: bare typed arrays are serialized, unknown classes are refused with a code", () => {
  const frames = dumps({ a: Float64Array.from([1.5]) });
  assert.deepEqual(loads(frames), { a: Float64Array.from([1.5]) });
  assert.equal(code(() => dumps({ a: new (class Thing {})() })), "DASK_ERR_MSGPACK_UNSUPPORTED");
  assert.equal(code(() => dumps({}, { shardBytes: 0 })), "DASK_ERR_SERIALIZED_FRAMES");
});

// --- loads: offsets and hostile frames ----------------------------------------------------------

test("loads: wrong offsets and missing frames are DASK_ERR_SERIALIZED_FRAMES", () => {
  const sub = encode({ serializer: "msgpack", "num-sub-frames": 1 });
  const good = [encode({ v: { __Serialized__: 1 } }), sub, encode(5)];
  assert.deepEqual(loads(good), { v: 5 });
  for (const bad of [0, -1, 3, 1.5, "1", true]) {
    assert.equal(code(() => loads([encode({ v: { __Serialized__: bad } }), sub, encode(5)])), "DASK_ERR_SERIALIZED_FRAMES", String(bad));
  }
  assert.equal(code(() => loads(good.slice(0, 2))), "DASK_ERR_SERIALIZED_FRAMES"); // sub-frame missing
  assert.equal(code(() => loads([good[0]!, encode([1]), encode(5)])), "DASK_ERR_SERIALIZED_FRAMES"); // header not a map
  assert.equal(code(() => loads([good[0]!, encode({ serializer: "msgpack" }), encode(5)])), "DASK_ERR_SERIALIZED_FRAMES"); // no count
  assert.equal(code(() => loads([])), "DASK_ERR_SERIALIZED_FRAMES");
  assert.equal(code(() => loads([good[0]!, Uint8Array.from([0xc1]), encode(5)])), "DASK_ERR_MSGPACK_INVALID");
});

test("loads: __Pickled__ is read with its buffers (decompressed), or kept as Pickled", () => {
  const pickle = Uint8Array.from([0x80, 5, 0x97, 0x2e]); // NEXT_BUFFER, STOP
  const buf = new Uint8Array(20_000).fill(3);
  const frames = [encode({ p: { __Pickled__: 1 } }), encode({ "pickled-obj": pickle, "num-sub-frames": 1, compression: ["lz4"] }), compressBlock(buf)];
  assert.deepEqual(loads(frames), { p: buf });
  const opaque = loads(frames, { deserialize: false }) as { p: Pickled };
  assert.ok(opaque.p instanceof Pickled);
  const again = dumps(opaque);
  assert.deepEqual(again, frames);
  assert.equal(code(() => loads([frames[0]!, encode({ "num-sub-frames": 0 })])), "DASK_ERR_SERIALIZED_FRAMES");
});

test("loads: other '__' maps reach the caller's objectHook; sets decode as Set", () => {
  const frames = [encode({ e: { __Enum__: true, name: "A" }, s: new Set([1, 2]) })];
  const seen: unknown[] = [];
  const msg = loads(frames, { objectHook: (o) => (seen.push(o), "hooked") }) as Record<string, unknown>;
  assert.equal(msg["e"], "hooked");
  assert.deepEqual(msg["s"], new Set([1, 2]));
  assert.equal(seen.length, 1);
});

test("loads with deserialize:false keeps frames compressed and the header as received", () => {
  const frames = dumps({ z: toSerialize(new Uint8Array(50_000)) }, { compression: "lz4" });
  const opaque = loads(frames, { deserialize: false }) as { z: Serialized };
  assert.deepEqual(opaque.z.header["compression"], ["lz4"]);
  assert.equal(opaque.z.frames[0], frames[2]);
  assert.deepEqual(deserialize(opaque.z.header, opaque.z.frames), new Uint8Array(50_000));
});

test("a received (compressed, sharded) Serialized inside a collection is sent as logical frames", () => {
  const payload = new Uint8Array(70_000).fill(1);
  const wire = dumps({ v: toSerialize(payload) }, { compression: "lz4", shardBytes: 40_000 });
  const opaque = (loads(wire, { deserialize: false }) as { v: Serialized }).v;
  assert.deepEqual(opaque.header["split-num-sub-frames"], [2]);
  // Nested: Python's deserialize ignores per-element compression, so we must not rely on it.
  const frames = dumps({ list: toSerialize([opaque, 5]) });
  const sub = decode(frames[1]!) as { "sub-headers": Array<Record<string, unknown>> };
  assert.equal("compression" in sub["sub-headers"][0]!, false);
  assert.deepEqual(loads(frames), { list: [payload, 5] });
  // At the top level (also when wrapped in Serialize) it is relayed verbatim.
  const top = dumps({ a: opaque, b: toSerialize(opaque) });
  assert.deepEqual(top.slice(1, 4), wire.slice(1, 4));
  assert.deepEqual(top.slice(4, 7), wire.slice(1, 4));
});

test("hostile frames: random byte edits anywhere give a value or a coded DaskError, never anything else", () => {
  const base = vectorFrames("0059_").map((f) => f.slice());
  const ours = dumps(
    { a: toSerialize([1, Float64Array.from([1, 2]), new Set([tuple<unknown>("k", 1)])]), z: toSerialize(new Uint8Array(30_000)) },
    { compression: "lz4" },
  ).map((f) => f.slice());
  for (const frames of [base, ours]) {
    fc.assert(
      fc.property(fc.nat({ max: frames.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(), (which, edits, opaque) => {
        const copy = frames.map((f) => f.slice());
        const target = copy[which]!;
        if (target.length === 0) return;
        for (const [at, v] of edits) target[at % target.length] = v;
        try {
          loads(copy, { deserialize: !opaque });
        } catch (err) {
          assert.ok(err instanceof DaskError, `${String(err)}`);
        }
      }),
      { numRuns: 400 },
    );
  }
});
