// Every captured wire message (vectors-2022.12 and vectors-2026.7): frame 0 and every msgpack
// sub-header ({"__Serialized__": i} / {"__Pickled__": i} point at them) decode on both backends,
// agree with @msgpack/msgpack, and with preserveFloats re-encode to the exact captured bytes.
// The u64 framing is parsed here with a DataView on purpose: the frame reader is another module.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode as refDecode } from "@msgpack/msgpack";
import { createCodec } from "../../src/protocol/msgpack.ts";
import { VECTORS_2022, VECTORS_2026, vectorFiles, splitWireFrames } from "../helpers/env.ts";

const splitFrames = splitWireFrames;

/** Indices of frames that are msgpack: frame 0 plus every sub-header it (transitively) points at. */
function msgpackFrames(frames: Uint8Array[]): number[] {
  const out: number[] = [];
  const visit = (i: number): void => {
    if (out.includes(i) || i >= frames.length) return;
    out.push(i);
    createCodec("js").decode(frames[i]!, {
      objectHook: (o) => {
        const at = o.__Serialized__ ?? o.__Pickled__;
        if (typeof at === "number") visit(at);
        return o;
      },
    });
  };
  visit(0);
  return out.sort((a, b) => a - b);
}

const vectors = [...vectorFiles(VECTORS_2022).map((v) => ({ ...v, name: "2022.12/" + v.name })), ...vectorFiles(VECTORS_2026).map((v) => ({ ...v, name: "2026.7/" + v.name }))];

describe("msgpack on captured dask traffic", () => {
  it("there are vectors from both versions", () => {
    assert.ok(vectors.filter((v) => v.name.startsWith("2022.12/")).length > 20);
    assert.ok(vectors.filter((v) => v.name.startsWith("2026.7/")).length > 20);
  });

  let subHeaders = 0;
  let refused = 0;
  const NO_REF = Symbol("no reference");
  const twin = createCodec("js");
  for (const kind of ["js", "wasm"] as const) {
    const codec = createCodec(kind);
    it(`${kind}: every frame 0 and msgpack sub-header decodes like @msgpack/msgpack and re-encodes byte-identically`, () => {
      let checked = 0;
      for (const v of vectors) {
        const frames = splitFrames(v.bytes);
        for (const i of msgpackFrames(frames)) {
          const frame = frames[i]!;
          const plain = codec.decode(frame);
          assert.deepStrictEqual(plain, twin.decode(frame), `${v.name} frame ${i}: backends agree`);
          // The reference has no Set mapping and refuses tuple map keys: compare through a
          // re-encode of ours where it can decode the frame at all.
          let ref: unknown;
          try {
            ref = refDecode(frame);
          } catch {
            ref = NO_REF;
            refused++;
          }
          if (ref !== NO_REF) assert.deepStrictEqual(refDecode(codec.encode(plain)), ref, `${v.name} frame ${i}`);
          const exact = codec.encode(codec.decode(frame, { preserveFloats: true }));
          assert.deepEqual(exact, frame, `${v.name} frame ${i} re-encodes to the captured bytes`);
          if (i > 0) subHeaders++;
          checked++;
        }
      }
      assert.ok(checked >= vectors.length);
      if (kind === "js") console.log(`# ${vectors.length} messages, ${checked} msgpack frames checked`);
    });
  }
  for (const kind of ["js", "wasm"] as const) {
    const codec = createCodec(kind);
    it(`${kind}: every strict prefix of every captured msgpack frame (<= 4 KiB) is DASK_ERR_MSGPACK_TRUNCATED`, () => {
      let prefixes = 0;
      for (const v of vectors) {
        const frames = splitFrames(v.bytes);
        for (const i of msgpackFrames(frames)) {
          const frame = frames[i]!;
          if (frame.length > 4096) continue;
          for (let n = 0; n < frame.length; n++) {
            assert.throws(() => codec.decode(frame.subarray(0, n)), (e: unknown) => (e as { code?: string }).code === "DASK_ERR_MSGPACK_TRUNCATED", `${v.name} frame ${i} cut at ${n}`);
            prefixes++;
          }
        }
      }
      assert.ok(prefixes > 10_000);
    });
  }

  it("sub-headers were among them, and the reference decoded most frames", () => {
    console.log(`# sub-headers checked: ${subHeaders} (both backends), reference refused: ${refused}`);
    assert.ok(subHeaders > 0);
    assert.ok(refused < vectors.length / 4, `reference refused ${refused} frames`);
  });
});
