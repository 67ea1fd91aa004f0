// End-to-end check of the whole read/write path on every real captured message
// (shared/protocol/vectors-2022.12 and vectors-2026.7): bytes -> FrameReader -> loads -> value,
// and value -> dumps -> packTcpMessage -> the same bytes.
//
// "Decodes" means: frames are read, frame 0 and every sub-header decode, every placeholder
// resolves. Relaying (deserialize: false, the scheduler's way) must reproduce the original bytes
// exactly: every captured message was produced deterministically by msgpack-python (floats kept
// as floats via preserveFloats). The 2026 split messages (N counting only the first frames) are
// re-written with N = total, which both dialects accept (MODERN-DELTA §1), so for those only the
// frames are compared.
// Deserializing (deserialize: true) must succeed too; pickles outside the data-only subset (a
// Python client's cloudpickled code objects, tblib exceptions) stay opaque with keepUnreadable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameReader, packTcpMessage } from "../../src/protocol/frames.ts";
import { dumps, loads, Pickled, Serialized } from "../../src/protocol/serialize.ts";
import { VECTORS_2022, VECTORS_2026, vectorFiles } from "../helpers/env.ts";

const vectors = [...vectorFiles(VECTORS_2022), ...vectorFiles(VECTORS_2026).map((v) => ({ ...v, name: `2026/${v.name}` }))];

function readOne(bytes: Uint8Array): Uint8Array[] {
  const r = new FrameReader();
  r.push(bytes);
  const frames = r.next();
  assert.ok(frames, "a complete message");
  assert.equal(r.next(), null, "exactly one message");
  assert.equal(r.bufferedBytes, 0);
  return frames;
}

function countPlaceholders(v: unknown, seen = { serialized: 0, pickled: 0 }): typeof seen {
  if (v instanceof Serialized) seen.serialized++;
  else if (v instanceof Pickled) seen.pickled++;
  else if (Array.isArray(v)) for (const x of v) countPlaceholders(x, seen);
  else if (v instanceof Map) for (const [k, x] of v) (countPlaceholders(k, seen), countPlaceholders(x, seen));
  else if (v && typeof v === "object" && !(v instanceof Uint8Array)) for (const x of Object.values(v)) countPlaceholders(x, seen);
  return seen;
}

test(`all ${vectors.length} captured messages relay byte-identically (read, loads without deserializing, dumps, pack)`, () => {
  assert.ok(vectors.length >= 420, `vectors found: ${vectors.length}`);
  let split = 0;
  let placeholders = 0;
  for (const { name, bytes } of vectors) {
    const frames = readOne(bytes);
    const msg = loads(frames, { deserialize: false, preserveFloats: true });
    const c = countPlaceholders(msg);
    placeholders += c.serialized + c.pickled;
    const again = dumps(msg);
    assert.deepEqual(again.map((f) => Buffer.from(f).toString("hex")), frames.map((f) => Buffer.from(f).toString("hex")), name);
    const packed = packTcpMessage(again);
    const total = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    if (total + 8 === bytes.length) assert.ok(Buffer.from(packed).equals(Buffer.from(bytes)), `${name}: bytes differ`);
    else split++; // 2026 split message: N counted only the first frames
  }
  assert.ok(placeholders > 100, `placeholders relayed: ${placeholders}`);
  assert.ok(split >= 1, "at least one real 2026 split message is in the captures");
});

test("every captured message deserializes (pickles outside the subset stay opaque)", () => {
  let opaque = 0;
  for (const { name, bytes } of vectors) {
    const frames = readOne(bytes);
    let msg: unknown;
    assert.doesNotThrow(() => {
      msg = loads(frames, { keepUnreadable: true });
    }, name);
    const c = countPlaceholders(msg);
    opaque += c.serialized + c.pickled;
  }
  // Python clients' task functions are cloudpickled code; they cannot be read as data.
  assert.ok(opaque < vectors.length, `opaque values: ${opaque}`);
});
