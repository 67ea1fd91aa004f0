// The gateway's channel codec (src/gateway/mux.ts) on its own: every message type round-trips,
// the u32 LE channel survives its edges, and anything shorter than the header or of an unknown
// type is a coded ProtocolError (DASK_ERR_GATEWAY_MESSAGE), never a silent misparse.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeMux, encodeMux, MUX_HEADER_BYTES, MuxType, muxText, muxTypeName, type MuxTypeCode } from "../../src/gateway/mux.ts";
import { ProtocolError } from "../../src/errors.ts";
import { errorCode } from "../helpers/env.ts";

const TYPES = Object.entries(MuxType) as Array<[string, MuxTypeCode]>;

test("every message type round-trips with a binary payload, a text payload and an empty one", () => {
  assert.equal(TYPES.length, 8);
  for (const [name, type] of TYPES) {
    const bin = Uint8Array.of(0, 255, 1, 254);
    const m = decodeMux(encodeMux(type, 7, bin));
    assert.equal(m.type, type);
    assert.equal(m.channel, 7);
    assert.deepEqual([...m.payload], [...bin]);
    assert.equal(muxTypeName(type), name);

    const t = decodeMux(encodeMux(type, 8, "tcp://127.0.0.1:8786 ✓"));
    assert.equal(muxText(t.payload), "tcp://127.0.0.1:8786 ✓");

    const e = encodeMux(type, 9);
    assert.equal(e.length, MUX_HEADER_BYTES);
    assert.equal(decodeMux(e).payload.length, 0);
  }
});

test("the header is [u8 type][u32 LE channel]: bytes checked against a hand-written DataView layout", () => {
  const msg = encodeMux(MuxType.DATA, 0x01020304, Uint8Array.of(9));
  assert.deepEqual([...msg], [MuxType.DATA, 0x04, 0x03, 0x02, 0x01, 9]);
});

test("channel u32 edges: 0, 1, 2^31-1, 2^31, 2^32-1 survive; the encoder wraps like >>> 0", () => {
  for (const ch of [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) {
    assert.equal(decodeMux(encodeMux(MuxType.OPEN, ch, "x")).channel, ch);
  }
  // 2^32 + 5 is outside u32: what goes on the wire is its low 32 bits, not a range error.
  assert.equal(decodeMux(encodeMux(MuxType.OPEN, 2 ** 32 + 5)).channel, 5);
});

test("decoding a message inside a larger buffer (non-zero byteOffset) reads its own bytes only", () => {
  const inner = encodeMux(MuxType.CLOSE, 0xdeadbeef, "bye");
  const outer = new Uint8Array(inner.length + 6).fill(0xee);
  outer.set(inner, 3);
  const m = decodeMux(outer.subarray(3, 3 + inner.length));
  assert.equal(m.type, MuxType.CLOSE);
  assert.equal(m.channel, 0xdeadbeef);
  assert.equal(muxText(m.payload), "bye");
});

test("a message shorter than the 5-byte header is DASK_ERR_GATEWAY_MESSAGE (0..4 bytes)", () => {
  for (let n = 0; n < MUX_HEADER_BYTES; n++) {
    const bytes = new Uint8Array(n).fill(MuxType.DATA);
    assert.equal(errorCode(() => decodeMux(bytes), ProtocolError), "DASK_ERR_GATEWAY_MESSAGE", `${n} bytes`);
  }
});

test("an unknown type (0, 9, 99, 255) is DASK_ERR_GATEWAY_MESSAGE", () => {
  for (const type of [0, 9, 99, 255]) {
    const bytes = Uint8Array.of(type, 1, 0, 0, 0, 42);
    assert.equal(errorCode(() => decodeMux(bytes), ProtocolError), "DASK_ERR_GATEWAY_MESSAGE", `type ${type}`);
    assert.equal(muxTypeName(type), `type ${type}`);
  }
});

test("property: decode(encode(type, channel, payload)) gives them back; any 5+ byte message decodes or throws coded", () => {
  fc.assert(
    fc.property(fc.constantFrom(...TYPES.map(([, t]) => t)), fc.nat({ max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 64 }), (type, channel, payload) => {
      const m = decodeMux(encodeMux(type, channel, payload));
      assert.equal(m.type, type);
      assert.equal(m.channel, channel);
      assert.deepEqual([...m.payload], [...payload]);
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 32 }), (bytes) => {
      let m;
      try {
        m = decodeMux(bytes);
      } catch (e) {
        assert.ok(e instanceof ProtocolError && e.code === "DASK_ERR_GATEWAY_MESSAGE", String(e));
        assert.ok(bytes.length < MUX_HEADER_BYTES || !TYPES.some(([, t]) => t === bytes[0]));
        return;
      }
      assert.ok(bytes.length >= MUX_HEADER_BYTES);
      assert.equal(m.type, bytes[0]);
      assert.equal(m.payload.length, bytes.length - MUX_HEADER_BYTES);
    }),
  );
});
