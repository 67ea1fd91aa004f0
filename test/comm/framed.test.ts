// FramedComm without sockets: a fake ByteTransport, the real TCP framing and serialize codec.
// Properties: any split of a byte stream decodes to the same messages; garbage never throws
// out of `receive` and always ends the comm with a coded DaskError.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FramedComm, type ByteTransport } from "../../src/comm/framed.ts";
import { DEFAULT_CODEC, tcpFraming, COALESCE_LIMIT } from "../../src/comm/wire.ts";
import { DaskError } from "../../src/errors.ts";

function fakeTransport(): ByteTransport & { out: Uint8Array[]; ended: boolean; destroyed: boolean } {
  const t = {
    out: [] as Uint8Array[],
    ended: false,
    destroyed: false,
    async write(chunks: Uint8Array[]) {
      t.out.push(...chunks);
    },
    end() {
      t.ended = true;
    },
    destroy() {
      t.destroyed = true;
    },
  };
  return t;
}

function makeComm(limits?: { maxFrameBytes?: number }): { comm: FramedComm; transport: ReturnType<typeof fakeTransport> } {
  const transport = fakeTransport();
  const comm = new FramedComm({ transport, framing: tcpFraming(limits), codec: DEFAULT_CODEC, localAddress: "tcp://a:1", peerAddress: "tcp://b:2" });
  return { comm, transport };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// Values the codec maps back to themselves (plain msgpack: no typed arrays or Sets at the top).
const wireValue = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.string(),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.string().filter((k) => !k.startsWith("__")), tie("v"), { maxKeys: 4, noNullPrototype: true }),
  ),
})).v;

test("property: messages written by one comm are read back by another at any chunking", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(wireValue, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), async (msgs, cuts) => {
      const sender = makeComm();
      for (const m of msgs) await sender.comm.write(m);
      const stream = concat(sender.transport.out);
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const receiver = makeComm();
      let prev = 0;
      for (const p of [...points, stream.length]) {
        // A fresh copy per chunk: the reader keeps references to pushed chunks (frames.ts).
        receiver.comm.receive(stream.slice(prev, p));
        prev = p;
      }
      for (const m of msgs) assert.deepEqual(await receiver.comm.read(), m);
    }),
    { numRuns: 200 },
  );
});

test("property: arbitrary bytes never throw out of receive; a bad stream ends the comm with a DaskError", async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (bytes) => {
      const { comm, transport } = makeComm({ maxFrameBytes: 1 << 16 });
      comm.receive(bytes); // must not throw
      comm.ended(); // EOF after the garbage
      // Every read settles: messages (if the bytes happened to be valid) then a DaskError.
      for (let i = 0; i < 1000; i++) {
        try {
          await comm.read();
        } catch (e) {
          assert.ok(e instanceof DaskError, String(e));
          assert.equal(comm.closed, true);
          assert.ok(transport.ended || transport.destroyed);
          return;
        }
      }
      assert.fail("reads never ended");
    }),
    { numRuns: 300 },
  );
});

test("small messages leave as one chunk, large ones as prelude + frames (no copy of the payload)", async () => {
  const { comm, transport } = makeComm();
  await comm.write({ op: "x" });
  assert.equal(transport.out.length, 1);
  transport.out.length = 0;
  const big = new Uint8Array(COALESCE_LIMIT * 2);
  await comm.write({ data: big });
  assert.ok(transport.out.length >= 2, "prelude written apart from the frames");
  const receiver = makeComm();
  for (const chunk of transport.out) receiver.comm.receive(chunk.slice());
  const back = (await receiver.comm.read()) as { data: Uint8Array };
  assert.equal(back.data.length, big.length);
});

test("after a protocol error, already-decoded messages are dropped and writes reject with the same error", async () => {
  const { comm, transport } = makeComm();
  const ok = makeComm();
  await ok.comm.write("fine");
  comm.receive(concat(ok.transport.out));
  // A prelude claiming 2^40 bytes in one frame is refused at once.
  const bad = new Uint8Array(24);
  const dv = new DataView(bad.buffer);
  dv.setUint32(0, 16, true);
  dv.setUint32(4, 256, true);
  dv.setUint32(8, 1, true);
  dv.setUint32(20, 256, true);
  comm.receive(bad);
  const err = await comm.read().then(
    () => assert.fail("read should reject"),
    (e: unknown) => e as DaskError,
  );
  assert.ok(err instanceof DaskError);
  assert.equal(transport.destroyed, true);
  await assert.rejects(comm.write("more"), (e: unknown) => e === err);
});
