// Hostile and random input for the framing layer: every limit has its own code and fires before
// the claimed size is buffered or allocated, a dead reader stays dead, the two prelude backends
// agree on arbitrary bytes, and random frame lists survive random chunking (fast-check).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import * as S from "../../assembly/status.ts";
import { ConfigError, ProtocolError, errorFromStatus, type DaskError } from "../../src/errors.ts";
import {
  DEFAULT_FRAME_LIMITS,
  FrameReader,
  WsFrameReader,
  encodeWsMessages,
  packTcpMessage,
  parsePreludeJs,
  resolveFrameLimits,
  type FrameBackend,
  type FrameLimits,
} from "../../src/protocol/frames.ts";
import { WasmPreludeParser } from "../../src/wasm/frame.ts";

const BACKENDS: FrameBackend[] = ["js", "wasm"];

/** Hand-built prelude bytes: u64 N, u64 n, then the given lengths (BigInt for values >= 2^53). */
function prelude(n: bigint, count: bigint, lengths: bigint[] = []): Uint8Array {
  const b = new Uint8Array(16 + 8 * lengths.length);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, n, true);
  dv.setBigUint64(8, count, true);
  lengths.forEach((l, i) => dv.setBigUint64(16 + 8 * i, l, true));
  return b;
}

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `ProtocolError expected, got ${String(e)}`);
    assert.equal((e as DaskError).code, code);
    return true;
  };
}

/** Pushes `bytes` into a fresh reader and expects `code` from next(); returns the reader. */
function expectError(backend: FrameBackend, bytes: Uint8Array, code: string, limits?: Partial<FrameLimits>): FrameReader {
  const r = new FrameReader(limits, backend);
  r.push(bytes);
  assert.throws(() => r.next(), isCode(code));
  return r;
}

for (const backend of BACKENDS) {
  test(`[${backend}] each limit has its own code`, () => {
    // frame longer than maxFrameBytes
    expectError(backend, prelude(8n + 8n + 100n, 1n, [100n]), "DASK_ERR_FRAME_TOO_LARGE", { maxFrameBytes: 99 });
    // at the limit is fine (the reader waits for the frame bytes)
    const ok = new FrameReader({ maxFrameBytes: 100 }, backend);
    ok.push(prelude(8n + 8n + 100n, 1n, [100n]));
    assert.equal(ok.next(), null);
    // N above maxMessageBytes is refused from the first 8 bytes alone
    expectError(backend, prelude(1001n, 1n).subarray(0, 8), "DASK_ERR_MESSAGE_TOO_LARGE", { maxMessageBytes: 1000 });
    // Σlen above maxMessageBytes even when N is small (2026 split: frames beyond N)
    expectError(backend, prelude(24n, 2n, [600n, 600n]), "DASK_ERR_MESSAGE_TOO_LARGE", { maxMessageBytes: 1000 });
    // the message limit counts the prelude too: 8 + 16 + 10 + 10 = 44 bytes after the leading u64
    expectError(backend, prelude(24n, 2n, [10n, 10n]), "DASK_ERR_MESSAGE_TOO_LARGE", { maxMessageBytes: 43 });
    const at = new FrameReader({ maxMessageBytes: 44 }, backend);
    at.push(prelude(24n, 2n, [10n, 10n]));
    at.push(new Uint8Array(20));
    assert.equal(at.next()?.length, 2);
    // nframes above maxFrames, refused from the first 16 bytes
    expectError(backend, prelude(8n + 8n * 11n, 11n), "DASK_ERR_TOO_MANY_FRAMES", { maxFrames: 10 });
    // N inconsistent with the prelude
    expectError(backend, prelude(3n, 1n), "DASK_ERR_FRAME_BAD_PRELUDE");
  });

  test(`[${backend}] nframes = 2^40 is refused after 16 bytes, before buffering its prelude`, () => {
    // N itself is modest (a hostile peer need not announce a huge N to announce many frames)
    const r = new FrameReader({}, backend);
    const b = prelude(1000n, 2n ** 40n);
    r.push(b.subarray(0, 15));
    assert.equal(r.next(), null);
    r.push(b.subarray(15, 16));
    assert.throws(() => r.next(), isCode("DASK_ERR_TOO_MANY_FRAMES"));
    // an N that matches 2^40 frames passes a raised message limit; the count still fails
    expectError(backend, prelude(8n + 8n * 2n ** 40n, 2n ** 40n), "DASK_ERR_TOO_MANY_FRAMES", { maxMessageBytes: Number.MAX_SAFE_INTEGER });
  });

  test(`[${backend}] N = 3 (smaller than the prelude) and N = 0`, () => {
    expectError(backend, prelude(3n, 1n, [0n]), "DASK_ERR_FRAME_BAD_PRELUDE");
    expectError(backend, prelude(0n, 0n), "DASK_ERR_FRAME_BAD_PRELUDE");
    // N = 8 with zero frames is a valid empty message
    const r = new FrameReader({}, backend);
    r.push(prelude(8n, 0n));
    assert.deepEqual(r.next(), []);
  });

  test(`[${backend}] N not on a frame boundary, and N beyond the announced frames`, () => {
    // prelude = 8 + 16 = 24; frames 5 + 5: valid N are 24, 29, 34
    for (const n of [25n, 28n, 30n, 33n]) expectError(backend, prelude(n, 2n, [5n, 5n]), "DASK_ERR_FRAME_BAD_PRELUDE");
    expectError(backend, prelude(35n, 2n, [5n, 5n]), "DASK_ERR_FRAME_BAD_PRELUDE");
    for (const n of [24n, 29n, 34n]) {
      const r = new FrameReader({}, backend);
      r.push(prelude(n, 2n, [5n, 5n]));
      r.push(new Uint8Array(10).fill(1));
      assert.equal(r.next()?.length, 2, `N = ${n}`);
    }
  });

  test(`[${backend}] lengths that would overflow a u64 sum or a double`, () => {
    const maxed = { maxFrameBytes: Number.MAX_SAFE_INTEGER, maxMessageBytes: Number.MAX_SAFE_INTEGER };
    // each length fits the frame limit, their sum does not fit the message limit
    expectError(backend, prelude(24n, 2n, [2n ** 52n, 2n ** 52n]), "DASK_ERR_MESSAGE_TOO_LARGE", maxed);
    // lengths near 2^64: would wrap a u64 sum to something small
    expectError(backend, prelude(24n, 2n, [2n ** 64n - 1n, 2n]), "DASK_ERR_FRAME_TOO_LARGE", maxed);
    expectError(backend, prelude(24n, 2n, [2n ** 63n, 2n ** 63n]), "DASK_ERR_FRAME_TOO_LARGE", maxed);
    // 2^53 + 1 rounds to 2^53 as a double but must still exceed a 2^53-1 limit
    expectError(backend, prelude(16n, 1n, [2n ** 53n + 1n]), "DASK_ERR_FRAME_TOO_LARGE", maxed);
  });

  test(`[${backend}] a dead reader stays dead with the same error`, () => {
    const r = expectError(backend, prelude(3n, 1n), "DASK_ERR_FRAME_BAD_PRELUDE");
    let first: unknown;
    try {
      r.next();
    } catch (e) {
      first = e;
    }
    assert.ok(first instanceof ProtocolError);
    assert.throws(() => r.next(), (e) => e === first);
    assert.throws(() => r.push(packTcpMessage([Uint8Array.of(1)])), (e) => e === first);
    assert.throws(() => r.next(), (e) => e === first);
  });

  test(`[${backend}] property: random frames -> pack -> random chunking -> same frames`, () => {
    const frameArb = fc.uint8Array({ maxLength: 300 });
    const messagesArb = fc.array(fc.array(frameArb, { maxLength: 6 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(messagesArb, fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 20 }), fc.nat(), (messages, cuts, splitSeed) => {
        // some messages written as 2026 split messages (N over the first k frames only)
        const wire = messages.map((frames, m) => {
          const bytes = packTcpMessage(frames);
          const k = frames.length ? (splitSeed + m) % (frames.length + 1) : 0;
          let nosplit = 8 + 8 * frames.length;
          for (let i = 0; i < k; i++) nosplit += frames[i]!.length;
          new DataView(bytes.buffer).setBigUint64(0, BigInt(nosplit), true);
          return bytes;
        });
        const stream = Buffer.concat(wire);
        const r = new FrameReader({}, backend);
        const got: Uint8Array[][] = [];
        let pos = 0;
        for (let c = 0; pos < stream.length; c++) {
          const size = cuts[c % cuts.length]!;
          r.push(stream.subarray(pos, pos + size));
          pos += size;
          for (let m = r.next(); m !== null; m = r.next()) got.push(m);
        }
        assert.equal(r.bufferedBytes, 0);
        assert.deepEqual(
          got.map((fs) => fs.map((f) => Buffer.from(f).toString("hex"))),
          messages.map((fs) => fs.map((f) => Buffer.from(f).toString("hex"))),
        );
      }),
      { numRuns: 300 },
    );
  });
}

test("differential: Wasm kernel and TS twin agree on arbitrary prefixes and limits", () => {
  const wasm = new WasmPreludeParser();
  // structured inputs (plausible N / n / lengths) and raw bytes, cut at a random prefix
  const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 64n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 8n, 16n, 24n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n));
  const structured = fc.tuple(u64, fc.integer({ min: 0, max: 6 }), fc.array(u64, { maxLength: 6 })).map(([n, count, lens]) => prelude(n, BigInt(count), lens));
  const raw = fc.uint8Array({ maxLength: 80 });
  const limitsArb = fc.record({
    maxFrameBytes: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.constant(Number.MAX_SAFE_INTEGER)),
    maxMessageBytes: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(Number.MAX_SAFE_INTEGER)),
    maxFrames: fc.integer({ min: 0, max: 8 }),
  });
  fc.assert(
    fc.property(fc.oneof(structured, raw), fc.nat(), limitsArb, (bytes, cut, limits) => {
      const prefix = bytes.subarray(0, bytes.length ? cut % (bytes.length + 1) : 0);
      const a = parsePreludeJs(prefix, limits);
      const b = wasm.parse(prefix, limits);
      assert.deepEqual(b, a);
    }),
    { numRuns: 5000 },
  );
});

test("differential: both backends accept a real-size prelude (maxFrames entries)", () => {
  const wasm = new WasmPreludeParser();
  const limits = resolveFrameLimits({ maxFrames: 4096 });
  const lens = Array.from({ length: 4096 }, (_, i) => BigInt(i % 17));
  const sum = lens.reduce((a, b) => a + b, 0n);
  const bytes = prelude(8n + 8n * 4096n + sum, 4096n, lens);
  const a = parsePreludeJs(bytes, limits);
  assert.equal(a.status, S.STATUS_OK);
  assert.deepEqual(wasm.parse(bytes, limits), a);
  assert.equal(a.bytes, 16 + 8 * 4096 + Number(sum));
});

test("WebSocket hostile input: bad count message, each limit, dead stays dead", () => {
  const count = (n: bigint): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };
  assert.throws(() => new WsFrameReader().push(new Uint8Array(7)), isCode("DASK_ERR_FRAME_WS_COUNT"));
  assert.throws(() => new WsFrameReader().push(new Uint8Array(9)), isCode("DASK_ERR_FRAME_WS_COUNT"));
  assert.throws(() => new WsFrameReader().push(count(2n ** 40n)), isCode("DASK_ERR_TOO_MANY_FRAMES"));
  assert.throws(() => new WsFrameReader({ maxFrames: 3 }).push(count(4n)), isCode("DASK_ERR_TOO_MANY_FRAMES"));
  const big = new WsFrameReader({ maxFrameBytes: 10 });
  assert.equal(big.push(count(1n)), null);
  assert.throws(() => big.push(new Uint8Array(11)), isCode("DASK_ERR_FRAME_TOO_LARGE"));
  assert.throws(() => big.push(count(1n)), isCode("DASK_ERR_FRAME_TOO_LARGE"), "dead after the error");
  // message limit counts 8 + 8n + Σlen, as for TCP: 8 + 16 + 10 + 10 = 44
  const msg = new WsFrameReader({ maxMessageBytes: 43 });
  const wire = encodeWsMessages([new Uint8Array(10), new Uint8Array(10)]);
  assert.equal(msg.push(wire[0]!), null);
  assert.equal(msg.push(wire[1]!), null);
  assert.throws(() => msg.push(wire[2]!), isCode("DASK_ERR_MESSAGE_TOO_LARGE"));
  const fits = new WsFrameReader({ maxMessageBytes: 44 });
  assert.equal(wire.map((w) => fits.push(w)).at(-1)?.length, 2);
});

test("limits: defaults are documented numbers and bad options name their path", () => {
  assert.deepEqual({ ...DEFAULT_FRAME_LIMITS }, { maxFrameBytes: 2 ** 31 - 1, maxMessageBytes: 2 ** 32, maxFrames: 65536 });
  assert.ok(Object.isFrozen(DEFAULT_FRAME_LIMITS));
  for (const bad of [{ maxFrames: -1 }, { maxFrameBytes: 1.5 }, { maxMessageBytes: 2 ** 53 }, { maxFrames: Number.NaN }]) {
    assert.throws(() => new FrameReader(bad), (e) => e instanceof ConfigError && e.message.startsWith(`options.${Object.keys(bad)[0]}`));
  }
  assert.throws(() => new WsFrameReader({ maxFrames: 2 ** 31 }), ConfigError);
});

test("every frame status code maps to a ProtocolError with its own code", () => {
  const statuses = [S.ERR_FRAME_TOO_LARGE, S.ERR_MESSAGE_TOO_LARGE, S.ERR_TOO_MANY_FRAMES, S.ERR_FRAME_BAD_PRELUDE, S.ERR_FRAME_WS_COUNT];
  const codes = new Set<string>();
  for (const st of statuses) {
    assert.ok(st <= -100 && st >= -199, `${st} in the frame range`);
    const e = errorFromStatus(st, "detail");
    assert.ok(e instanceof ProtocolError, `${st} is a ProtocolError`);
    assert.match(e.code, /^DASK_ERR_/);
    codes.add(e.code);
  }
  assert.equal(codes.size, statuses.length);
});
