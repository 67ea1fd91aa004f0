// FrameReader / writers against every captured wire message (2022.12 and 2026.7), with both
// prelude backends in one run. The oracle is an independent DataView parse written here, not
// the code under test (STYLE.md §6). Hostile input and properties: frames-hostile.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { FrameReader, WsFrameReader, encodeTcpPrelude, encodeWsMessages, packTcpMessage, type FrameBackend } from "../../src/protocol/frames.ts";
import { VECTORS_2022, VECTORS_2026, runPython, vectorFiles } from "../helpers/env.ts";

const BACKENDS: FrameBackend[] = ["js", "wasm"];

/** Independent oracle: the frames of one whole message, accepting N = total or a 2026 split N. */
function oracle(bytes: Uint8Array): { frames: Uint8Array[]; n: bigint } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  const count = Number(dv.getBigUint64(8, true));
  let pos = 16 + 8 * count;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const len = Number(dv.getBigUint64(16 + 8 * i, true));
    frames.push(bytes.slice(pos, pos + len));
    pos += len;
  }
  assert.equal(pos, bytes.length, "oracle: the file is exactly one message");
  return { frames, n };
}

/** Every vectors folder holding .bin files: 2022.12 and each 2026.7 subfolder. */
const FOLDERS: Array<{ name: string; files: Array<{ name: string; bytes: Uint8Array }> }> = [
  { name: "vectors-2022.12", files: vectorFiles(VECTORS_2022) },
  ...readdirSync(VECTORS_2026, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => ({ name: `vectors-2026.7/${e.name}`, files: vectorFiles(`${VECTORS_2026}${e.name}/`) })),
];

test("vector folders are present and non-empty", () => {
  assert.ok(FOLDERS.length >= 4, FOLDERS.map((f) => f.name).join(","));
  for (const f of FOLDERS) assert.ok(f.files.length > 0, `${f.name} has .bin files`);
});

function sameFrames(actual: Uint8Array[] | null, expected: Uint8Array[], what: string): void {
  assert.ok(actual !== null, `${what}: message expected`);
  assert.equal(actual.length, expected.length, `${what}: frame count`);
  for (let i = 0; i < expected.length; i++) assert.deepEqual(Buffer.from(actual[i]!), Buffer.from(expected[i]!), `${what}: frame ${i}`);
}

for (const backend of BACKENDS) {
  for (const folder of FOLDERS) {
    test(`[${backend}] ${folder.name}: whole, every two-way split, byte by byte`, () => {
      for (const { name, bytes } of folder.files) {
        const { frames } = oracle(bytes);
        // whole message in one chunk: zero-copy subarrays of that chunk
        const r = new FrameReader({}, backend);
        r.push(bytes);
        const got = r.next();
        sameFrames(got, frames, name);
        for (const f of got!) if (f.length) assert.equal(f.buffer, bytes.buffer, `${name}: frame is a view of the chunk`);
        assert.equal(r.next(), null);
        assert.equal(r.bufferedBytes, 0);
        // every split into two pushes; the strict prefix alone never yields a message
        for (let k = 1; k < bytes.length; k++) {
          const s = new FrameReader({}, backend);
          s.push(bytes.subarray(0, k));
          assert.equal(s.next(), null, `${name}: prefix ${k}`);
          assert.equal(s.bufferedBytes, k);
          s.push(bytes.subarray(k));
          sameFrames(s.next(), frames, `${name} split at ${k}`);
          assert.equal(s.bufferedBytes, 0);
        }
        // byte by byte, polling after each
        const b = new FrameReader({}, backend);
        for (let k = 0; k < bytes.length - 1; k++) {
          b.push(bytes.subarray(k, k + 1));
          assert.equal(b.next(), null, `${name}: byte ${k}`);
        }
        b.push(bytes.subarray(bytes.length - 1));
        sameFrames(b.next(), frames, `${name} byte by byte`);
      }
    });

    test(`[${backend}] ${folder.name}: all messages concatenated in one stream`, () => {
      const stream = Buffer.concat(folder.files.map((f) => f.bytes));
      const expected = folder.files.map((f) => oracle(f.bytes).frames);
      // one chunk, and odd-sized chunks polled after each push
      for (const chunkSize of [stream.length, 7, 4096]) {
        const r = new FrameReader({}, backend);
        const got: Uint8Array[][] = [];
        for (let p = 0; p < stream.length; p += chunkSize) {
          r.push(stream.subarray(p, p + chunkSize));
          for (let m = r.next(); m !== null; m = r.next()) got.push(m);
        }
        assert.equal(got.length, expected.length, `chunk ${chunkSize}: message count`);
        got.forEach((m, i) => sameFrames(m, expected[i]!, `chunk ${chunkSize}: ${folder.files[i]!.name}`));
        assert.equal(r.bufferedBytes, 0);
      }
    });
  }
}

test("writer: packTcpMessage(frames) reproduces every captured message (N = total)", () => {
  let count = 0;
  const split: string[] = [];
  for (const folder of FOLDERS) {
    for (const { name, bytes } of folder.files) {
      const { frames, n } = oracle(bytes);
      const packed = packTcpMessage(frames);
      // our writer always sets N = total (readable by 2022 and 2026); the captures did too,
      // except real 2026 "nosplit" messages, which may differ from ours only in N
      assert.equal(new DataView(packed.buffer).getBigUint64(0, true), BigInt(bytes.length - 8), `${name}: N = total`);
      if (n !== BigInt(bytes.length - 8)) split.push(`${folder.name}/${name}`);
      assert.deepEqual(Buffer.from(packed.subarray(8)), Buffer.from(bytes.subarray(8)), name);
      if (n === BigInt(bytes.length - 8)) assert.deepEqual(Buffer.from(packed), Buffer.from(bytes), name);
      assert.deepEqual(Buffer.from(encodeTcpPrelude(frames)), Buffer.from(packed.subarray(0, 16 + 8 * frames.length)), `${name} prelude`);
      count++;
    }
  }
  assert.ok(count > 400, `${count} vectors`);
  // the 2026 capture holds one real split message (a gather reply: N counts 4 of its 5 frames);
  // it went through every reader test above
  // (python-client/174-reply-to-gather at capture time); 2022 has no such messages
  assert.ok(split.length >= 1, "at least one real 2026 split message among the vectors");
  for (const name of split) assert.match(name, /^vectors-2026\.7\//);
});

test("WebSocket: encodeWsMessages -> WsFrameReader round trip for every vector's frames", () => {
  const r = new WsFrameReader();
  for (const folder of FOLDERS) {
    for (const { name, bytes } of folder.files) {
      const { frames } = oracle(bytes);
      const msgs = encodeWsMessages(frames);
      assert.equal(msgs.length, frames.length + 1);
      assert.equal(new DataView(msgs[0]!.buffer).getBigUint64(0, true), BigInt(frames.length), `${name}: count message`);
      for (let i = 0; i < msgs.length - 1; i++) assert.equal(r.push(msgs[i]!), null, `${name}: WS message ${i}`);
      const got = r.push(msgs[msgs.length - 1]!);
      sameFrames(got, frames, name);
      got!.forEach((f, i) => assert.equal(f, frames[i], "frames are the WS messages themselves"));
    }
  }
});

test("WebSocket: a zero-frame message completes on its count message", () => {
  const r = new WsFrameReader();
  const msgs = encodeWsMessages([]);
  assert.deepEqual(Buffer.from(msgs[0]!), Buffer.alloc(8));
  assert.deepEqual(r.push(msgs[0]!), []);
});

/** A 2026 "split" message: N counts the prelude and only the first `counted` frames. */
function splitMessage(frames: Uint8Array[], counted: number): Uint8Array {
  const bytes = packTcpMessage(frames);
  let nosplit = 8 + 8 * frames.length;
  for (let i = 0; i < counted; i++) nosplit += frames[i]!.length;
  new DataView(bytes.buffer).setBigUint64(0, BigInt(nosplit), true);
  return bytes;
}

const SAMPLE = [Uint8Array.of(0x81, 0xa2, 0x6f, 0x70, 0xa1, 0x78), new Uint8Array(0), Uint8Array.from({ length: 300 }, (_, i) => i & 255), Uint8Array.of(7, 7, 7)];

for (const backend of BACKENDS) {
  test(`[${backend}] 2026 split messages (N covers only the first frames), every split point`, () => {
    for (let counted = 0; counted <= SAMPLE.length; counted++) {
      const bytes = splitMessage(SAMPLE, counted);
      assert.deepEqual(oracle(bytes).frames, SAMPLE);
      for (let k = 1; k <= bytes.length; k++) {
        const r = new FrameReader({}, backend);
        r.push(bytes.subarray(0, k));
        if (k < bytes.length) {
          assert.equal(r.next(), null, `counted ${counted}, prefix ${k}`);
          r.push(bytes.subarray(k));
        }
        sameFrames(r.next(), SAMPLE, `counted ${counted}, split ${k}`);
        assert.equal(r.next(), null);
      }
      // followed by an ordinary message on the same stream: the reader stays aligned
      const r = new FrameReader({}, backend);
      r.push(Buffer.concat([bytes, packTcpMessage([Uint8Array.of(0xa2, 0x4f, 0x4b)])]));
      sameFrames(r.next(), SAMPLE, "split message first");
      sameFrames(r.next(), [Uint8Array.of(0xa2, 0x4f, 0x4b)], "then an N = total message");
    }
  });

  test(`[${backend}] frames spanning chunks are copied once into exactly-sized buffers`, () => {
    const big = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 255);
    const bytes = packTcpMessage([Uint8Array.of(1), big]);
    const r = new FrameReader({}, backend);
    for (let p = 0; p < bytes.length; p += 1000) {
      r.push(bytes.slice(p, p + 1000));
      if (p + 1000 < bytes.length) assert.equal(r.next(), null);
    }
    const got = r.next()!;
    assert.equal(got[1]!.byteLength, big.length);
    assert.equal(got[1]!.buffer.byteLength, big.length, "collected into a buffer of the frame's exact length");
    assert.deepEqual(Buffer.from(got[1]!), Buffer.from(big));
  });
}

test("Python's unpack_frames (Debian dask 2022.12.1) reads what packTcpMessage writes", () => {
  const frames = [Uint8Array.of(0x92, 1, 2), new Uint8Array(0), Uint8Array.from({ length: 70_000 }, (_, i) => i % 251)];
  const out = runPython(
    [
      "import sys, struct, hashlib",
      "from distributed.protocol.utils import unpack_frames",
      "b = sys.stdin.buffer.read()",
      "(n,) = struct.unpack('<Q', b[:8])",
      "assert n == len(b) - 8, (n, len(b))",
      "print(','.join(f'{len(f)}:{hashlib.md5(f).hexdigest()}' for f in unpack_frames(b[8:])))",
    ].join("\n"),
    packTcpMessage(frames),
  );
  const { createHash } = require_crypto();
  const expected = frames.map((f) => `${f.length}:${createHash("md5").update(f).digest("hex")}`).join(",");
  assert.equal(out.toString().trim(), expected);
});

function require_crypto(): typeof import("node:crypto") {
  return process.getBuiltinModule("node:crypto");
}
