// Live interop with Debian's Python (distributed 2022.12.1, python3-lz4, numpy): what we compress,
// serialize and dumps is read by the real `lz4.block`, `distributed.protocol.deserialize` and
// `distributed.protocol.loads`, and what they produce is read here. Frames cross as one msgpack
// array of bin values on stdin/stdout; Python checks types and values itself and prints a JSON
// summary that the test compares as well.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { decode, encode } from "../../src/protocol/msgpack.ts";
import { compressBlock, decompressBlock } from "../../src/protocol/lz4.ts";
import { NdArray, Serialized, deserialize, dumps, loads, serialize, toSerialize } from "../../src/protocol/serialize.ts";
import { tuple } from "../../src/protocol/values.ts";
import { noise, runPython } from "../helpers/env.ts";

const enc = new TextEncoder();
const PRELUDE = `
import sys, json, msgpack
def read_frames():
    return [bytes(f) for f in msgpack.unpackb(sys.stdin.buffer.read(), raw=False, strict_map_key=False)]
def write_frames(frames):
    sys.stdout.buffer.write(msgpack.packb([bytes(memoryview(f)) for f in frames], use_bin_type=True))
`;

function py(code: string, input?: Uint8Array): Buffer {
  return runPython(PRELUDE + code, input);
}

function framesFromPython(out: Buffer): Uint8Array[] {
  return decode(new Uint8Array(out.buffer, out.byteOffset, out.byteLength)) as Uint8Array[];
}

test("lz4: python3-lz4 decompresses our blocks, and we decompress its blocks", () => {
  const payloads = [new Uint8Array(0), enc.encode("dask ".repeat(3000)), noise(70_000, 12345), new Uint8Array(1 << 20)];
  // ours -> Python: Python returns the sha256 of what it decompressed, and its own compression
  const out = py(
    `
import hashlib, lz4.block
frames = read_frames()
res = []
for f in frames:
    d = lz4.block.decompress(f)
    res.append(hashlib.sha256(d).hexdigest())
print(json.dumps(res))
`,
    encode(payloads.map((p) => compressBlock(p))),
  );
  assert.deepEqual(JSON.parse(out.toString()), payloads.map((p) => createHash("sha256").update(p).digest("hex")));
  // Python -> ours
  const back = framesFromPython(
    py(
      `
import lz4.block
write_frames([lz4.block.compress(f) for f in read_frames()])
`,
      encode(payloads),
    ),
  );
  assert.equal(back.length, payloads.length);
  back.forEach((frame, i) => assert.deepEqual(decompressBlock(frame), payloads[i]));
});

test("numpy: our Float64Array and 2-D Int32Array are numpy arrays after distributed.protocol.deserialize", () => {
  const f64 = serialize(Float64Array.from([0, 1.5, -2, 1e300]));
  const i32 = serialize(new NdArray(Int32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]));
  const out = py(
    `
import numpy as np
from distributed.protocol import deserialize
(h1, f1), (h2, f2) = msgpack.unpackb(sys.stdin.buffer.read(), raw=False, strict_map_key=False, use_list=False)
a = deserialize(h1, list(f1))
b = deserialize(h2, list(f2))
assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (4,), (type(a), a.dtype, a.shape)
assert a.tolist() == [0.0, 1.5, -2.0, 1e300]
assert a.flags.writeable
assert isinstance(b, np.ndarray) and b.dtype == np.int32 and b.shape == (2, 3), (b.dtype, b.shape)
assert b[1, 2] == 6 and b[0, 1] == 2
print(json.dumps({"a": [str(a.dtype), list(a.shape), a.tolist()], "b": [str(b.dtype), list(b.shape), b.tolist()]}))
`,
    encode([
      [f64.header, f64.frames],
      [i32.header, i32.frames],
    ]),
  );
  assert.deepEqual(JSON.parse(out.toString()), {
    a: ["float64", [4], [0, 1.5, -2, 1e300]],
    b: ["int32", [2, 3], [[1, 2, 3], [4, 5, 6]]],
  });
});

test("numpy: arrays Python serializes (serialize(..., ['dask']) and lz4-compressed dumps) arrive as typed arrays", () => {
  const out = framesFromPython(
    py(`
import numpy as np
from distributed.protocol import serialize, dumps, to_serialize
a = np.arange(5, dtype="f8") / 4
h, f = serialize(a, serializers=["dask"])
fortran = np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3))
hf, ff = serialize(fortran, serializers=["dask"])
big = np.zeros(50_000, dtype="f8"); big[::7] = np.arange(len(big[::7]))
msg = dumps({"x": to_serialize(big), "n": 1}, context={"compression": "lz4"})
write_frames([msgpack.packb(h, use_bin_type=True)] + list(f) + [msgpack.packb(hf, use_bin_type=True)] + list(ff) + list(msg))
`),
  );
  const header = decode(out[0]!) as Record<string, unknown>;
  assert.deepEqual(deserialize(header, [out[1]!]), Float64Array.from([0, 0.25, 0.5, 0.75, 1]));
  const fortran = deserialize(decode(out[2]!) as Record<string, unknown>, [out[3]!]);
  assert.ok(fortran instanceof NdArray);
  assert.deepEqual(fortran.shape, [2, 3]);
  assert.deepEqual([...(fortran.data as Int32Array)], [0, 1, 2, 3, 4, 5]);
  // The dumps frames: check the array really travelled lz4-compressed, then load it.
  const msgFrames = out.slice(4);
  const opaque = loads(msgFrames, { deserialize: false }) as { x: Serialized };
  assert.deepEqual(opaque.x.header["compression"], ["lz4"]);
  const msg = loads(msgFrames) as { x: Float64Array; n: number };
  assert.equal(msg.n, 1);
  assert.ok(msg.x instanceof Float64Array);
  assert.equal(msg.x.length, 50_000);
  assert.equal(msg.x[7], 1);
  assert.equal(msg.x[49_994], 49_994 / 7);
  assert.equal(msg.x[1], 0);
});

test("collections: Array -> list, tuple() -> tuple, Set -> set, Map -> dict in distributed.protocol.loads", () => {
  const frames = dumps(
    {
      op: "probe",
      list: toSerialize([1, "a", enc.encode("b")]),
      tuple: toSerialize(tuple(1, 2)),
      set: toSerialize(new Set(["x", "y"])),
      map: toSerialize(new Map<unknown, unknown>([["k", Float64Array.from([2.5])], [tuple<unknown>("t", 0), 3]])),
      plain: [1, 2],
      nested: toSerialize({ a: [1, [2, 3]], t: tuple<unknown>(1, [4]), s: new Map<unknown, unknown>([["k", [5]]]) }),
      big: toSerialize(new Uint8Array(200_000).fill(7)),
    },
    { compression: "lz4" },
  );
  // The 200 kB of 7s went compressed, the small values did not (maybe_compress).
  const sent = loads(frames, { deserialize: false }) as Record<string, Serialized>;
  assert.deepEqual(sent["big"]!.header["compression"], ["lz4"]);
  assert.deepEqual(sent["tuple"]!.header["compression"], [null, null]);
  const out = py(
    `
import numpy as np
from distributed.protocol import loads
m = loads(read_frames())
assert type(m["list"]) is list and m["list"] == [1, "a", b"b"], m["list"]
assert type(m["tuple"]) is tuple and m["tuple"] == (1, 2)
assert type(m["set"]) is set and m["set"] == {"x", "y"}
d = m["map"]
assert type(d) is dict and set(d) == {"k", ("t", 0)}, d
assert isinstance(d["k"], np.ndarray) and d["k"].tolist() == [2.5]
assert d[("t", 0)] == 3
assert type(m["plain"]) is tuple  # plain msgpack arrays are tuples in Python (use_list=False)
n = m["nested"]  # nested lists stay lists (a data-only pickle), tuples stay tuples
assert n == {"a": [1, [2, 3]], "t": (1, [4]), "s": {"k": [5]}}, n
assert type(n["a"]) is list and type(n["a"][1]) is list and type(n["t"]) is tuple and type(n["t"][1]) is list
assert type(m["big"]) is bytes and m["big"] == b"\\x07" * 200_000
print(json.dumps({k: type(v).__name__ for k, v in m.items()}))
`,
    encode(frames),
  );
  assert.deepEqual(JSON.parse(out.toString()), { op: "str", list: "list", tuple: "tuple", set: "set", map: "dict", plain: "tuple", nested: "dict", big: "bytes" });
});

test("Python dumps of to_serialize([1, 'a', b'b']) loads here; opaque values relay back to Python intact", () => {
  const out = framesFromPython(
    py(`
import datetime
from distributed.protocol import dumps, to_serialize
write_frames(dumps({"x": to_serialize([1, "a", b"b"]), "when": to_serialize(datetime.date(2022, 12, 1))}))
`),
  );
  // The date is a pickle of a global our reader does not allow: by default that fails the
  // message with a coded PickleError; keepUnreadable keeps just that value opaque.
  assert.throws(() => loads(out), (err: Error & { code?: string }) => err.name === "PickleError" && /^DASK_ERR_PICKLE/.test(err.code ?? ""));
  const mixed = loads(out, { keepUnreadable: true }) as { x: unknown; when: unknown };
  assert.deepEqual(mixed.x, [1, "a", enc.encode("b")]);
  assert.ok(mixed.when instanceof Serialized);
  assert.equal(mixed.when.header["serializer"], "pickle");
  const opaque = loads(out, { deserialize: false }) as { x: Serialized; when: Serialized };
  assert.deepEqual(deserialize(opaque.x.header, opaque.x.frames), [1, "a", enc.encode("b")]);
  assert.equal(opaque.x.header["type-serialized"], "list");
  // Relay both verbatim (what a worker does with data it cannot read) and let Python read them.
  // (`when` as keepUnreadable gave it: logical frames, header without compression/split info.)
  const relayed = dumps({ op: "relay", x: opaque.x, when: mixed.when });
  const check = py(
    `
import datetime
from distributed.protocol import loads
m = loads(read_frames())
assert m["x"] == [1, "a", b"b"] and type(m["x"]) is list
assert m["when"] == datetime.date(2022, 12, 1)
print("ok")
`,
    encode(relayed),
  );
  assert.equal(check.toString().trim(), "ok");
});
