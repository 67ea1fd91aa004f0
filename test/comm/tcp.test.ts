// TCP specifics between our own endpoints on 127.0.0.1: raw sockets that misbehave (bad
// prelude, oversized frames, bad handshakes), big messages, byte-at-a-time delivery, EOF.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { connect, listen } from "../../src/comm/registry.ts";
import { Server } from "../../src/comm/server.ts";
import { sendRecv } from "../../src/comm/rpc.ts";
import type { Comm, Listener } from "../../src/comm/comm.ts";
import { encode, decode } from "../../src/protocol/msgpack.ts";
import { packTcpMessage } from "../../src/protocol/frames.ts";
import { DaskError } from "../../src/errors.ts";
import { readFileSync } from "node:fs";
import { VECTORS_2026 } from "../helpers/env.ts";
import { serializeCodec } from "../../src/comm/wire.ts";
import { Serialized, toSerialize } from "../../src/protocol/serialize.ts";

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A raw socket to `address`, with everything it receives collected. */
async function rawSocket(address: string): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const m = /^tcp:\/\/(.+):(\d+)$/.exec(address)!;
  const socket = net.connect({ host: m[1], port: Number(m[2]) });
  cleanup.push(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on("data", (c) => chunks.push(c));
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  await new Promise<void>((r) => socket.once("connect", () => r()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

function handshakeBytes(): Uint8Array {
  return packTcpMessage([encode({ compression: null, python: [3, 11, 2], "pickle-protocol": 5 })]);
}

async function pingServer(): Promise<{ server: Server; address: string; errors: unknown[] }> {
  const errors: unknown[] = [];
  const server = new Server({ handlers: { ping: () => "pong", echo: (a) => a["data"] } });
  cleanup.push(() => server.close());
  const address = await server.listen("tcp://127.0.0.1:0", { onError: (e) => errors.push(e) });
  return { server, address, errors };
}

test("a malformed prelude closes that comm with a coded error; the listener keeps serving", async () => {
  const got = deferred<Comm>();
  const listener = await listen("tcp://127.0.0.1:0", (comm) => got.resolve(comm));
  cleanup.push(() => listener.close());
  const raw = await rawSocket(listener.address);
  raw.socket.write(handshakeBytes());
  const comm = await got.promise;
  const pending = comm.read();
  // total = 8 says "only the frame count follows", but the count claims 5 frames.
  const bad = new Uint8Array(24);
  const dv = new DataView(bad.buffer);
  dv.setUint32(0, 16, true);
  dv.setUint32(8, 5, true);
  raw.socket.write(bad);
  await assert.rejects(pending, (e: unknown) => {
    assert.ok(e instanceof DaskError, String(e));
    assert.match(e.code, /^DASK_ERR_(FRAME|TOO_MANY|MESSAGE)/);
    return true;
  });
  assert.equal(comm.closed, true);
  await raw.closed; // we dropped the socket
  // Another peer is still served.
  const good = await connect(listener.address);
  cleanup.push(() => good.abort());
  assert.equal(good.handshakeInfo?.pickleProtocol, 4);
});

test("frame limits pass through to the reader: an oversized frame is refused before it arrives", async () => {
  const got = deferred<Comm>();
  const listener = await listen("tcp://127.0.0.1:0", (comm) => got.resolve(comm), { limits: { maxFrameBytes: 1000 } });
  cleanup.push(() => listener.close());
  const client = await connect(listener.address);
  cleanup.push(() => client.abort());
  const server = await got.promise;
  await client.write({ small: new Uint8Array(100) });
  assert.equal(((await server.read()) as { small: Uint8Array }).small.length, 100);
  // Only the prelude is sent; the reader must refuse on the declared length alone.
  const prelude = new Uint8Array(24);
  const dv = new DataView(prelude.buffer);
  dv.setUint32(0, 16 + 5000, true);
  dv.setUint32(8, 1, true);
  dv.setUint32(16, 5000, true);
  // A raw peer on a second listener with the same limits: handshake, then the prelude alone.
  const got2 = deferred<Comm>();
  const l2 = await listen("tcp://127.0.0.1:0", (comm) => got2.resolve(comm), { limits: { maxFrameBytes: 1000 } });
  cleanup.push(() => l2.close());
  const raw2 = await rawSocket(l2.address);
  raw2.socket.write(handshakeBytes());
  const c2 = await got2.promise;
  raw2.socket.write(prelude);
  await assert.rejects(c2.read(), { code: "DASK_ERR_FRAME_TOO_LARGE" });
  await raw2.closed;
});

test("a peer whose handshake is not a map, or lacks required keys, is dropped and reported", async () => {
  const { address, errors } = await pingServer();
  for (const bad of [encode("hello"), encode({ compression: null })]) {
    const raw = await rawSocket(address);
    raw.socket.write(packTcpMessage([bad]));
    await raw.closed;
    // What we received first is our own handshake, a map with both required keys.
    const got = raw.received();
    const frame0 = got.subarray(24, 24 + Number(got.readBigUInt64LE(16)));
    assert.deepEqual(decode(frame0), { compression: null, python: [3, 11, 2], "pickle-protocol": 4 });
  }
  assert.deepEqual(
    errors.map((e) => (e as DaskError).code),
    ["DASK_ERR_HANDSHAKE", "DASK_ERR_HANDSHAKE"],
  );
  const ok = await connect(address);
  cleanup.push(() => ok.abort());
  assert.equal(await sendRecv(ok, { op: "ping" }), "pong");
});

test("a silent peer times out its handshake without hurting the listener", async () => {
  const errors: unknown[] = [];
  const listener: Listener = await listen("tcp://127.0.0.1:0", () => {}, { timeoutMs: 50, onError: (e) => errors.push(e) });
  cleanup.push(() => listener.close());
  const raw = await rawSocket(listener.address);
  await raw.closed; // dropped by the handshake timeout, not by us
  assert.equal((errors[0] as DaskError).code, "DASK_ERR_COMM_TIMEOUT");
});

test("big messages (prelude + frames path) and byte-at-a-time delivery round-trip", async () => {
  const { address } = await pingServer();
  const comm = await connect(address);
  cleanup.push(() => comm.abort());
  const big = new Uint8Array(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
  const back = (await sendRecv(comm, { op: "echo", data: big })) as Uint8Array;
  assert.equal(back.length, big.length);
  assert.deepEqual(Buffer.from(back).equals(Buffer.from(big)), true);

  // The same request one byte per write from a raw socket.
  const raw = await rawSocket(address);
  const req = packTcpMessage([encode({ op: "echo", data: "drip", reply: true })]);
  const bytes = Buffer.concat([Buffer.from(handshakeBytes()), Buffer.from(req)]);
  for (let i = 0; i < bytes.length; i++) raw.socket.write(bytes.subarray(i, i + 1));
  const reply = deferred<string>();
  raw.socket.on("data", () => {
    const all = raw.received();
    // Skip our handshake message, then read the reply's frame 0.
    const first = 8 + Number(all.readBigUInt64LE(0));
    if (all.length < first + 8) return;
    const total = Number(all.readBigUInt64LE(first));
    if (all.length < first + 8 + total) return;
    const len = Number(all.readBigUInt64LE(first + 16));
    reply.resolve(decode(all.subarray(first + 24, first + 24 + len)) as string);
  });
  assert.equal(await reply.promise, "drip");
});

test("peer EOF rejects a pending read with DASK_ERR_COMM_CLOSED; writes after close reject", async () => {
  const got = deferred<Comm>();
  const listener = await listen("tcp://127.0.0.1:0", (comm) => got.resolve(comm));
  cleanup.push(() => listener.close());
  const client = await connect(listener.address);
  const server = await got.promise;
  const pending = server.read();
  await client.write("last words");
  await client.close();
  assert.equal(await pending, "last words");
  await assert.rejects(server.read(), { code: "DASK_ERR_COMM_CLOSED" });
  await assert.rejects(client.write("more"), { code: "DASK_ERR_COMM_CLOSED" });
  assert.match(client.localAddress, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(client.peerAddress, listener.address);
});

/** A raw listener: `onSocket` decides what it writes and when. */
async function rawListener(onSocket: (s: net.Socket, received: () => Buffer) => void): Promise<string> {
  const server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    s.on("data", (c) => chunks.push(c));
    s.on("error", () => {});
    cleanup.push(() => s.destroy());
    onSocket(s, () => Buffer.concat(chunks));
  });
  cleanup.push(() => server.close());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test("connect: we write our handshake without waiting, so a listener that reads first still answers", async () => {
  // Replay of the 2026.7 scheduler's handshake, sent only once ours has fully arrived.
  const theirs = readFileSync(VECTORS_2026 + "python-client/001-handshake.from-scheduler.bin");
  const address = await rawListener((s, received) => {
    s.on("data", () => {
      const got = received();
      if (got.length >= 8 && got.length >= 8 + Number(got.readBigUInt64LE(0))) s.write(theirs);
    });
  });
  const comm = await connect(address, { timeoutMs: 10_000 });
  cleanup.push(() => comm.abort());
  assert.equal(comm.handshakeInfo?.pickleProtocol, 4);
  assert.equal(comm.handshakeInfo?.remote["pickle-protocol"], 5);
});

test("connect: a listener that never sends its handshake fails with DASK_ERR_COMM_TIMEOUT", async () => {
  let closedByPeer!: () => void;
  const peerSawClose = new Promise<void>((r) => (closedByPeer = r));
  const address = await rawListener((s) => s.on("close", () => closedByPeer()));
  await assert.rejects(connect(address, { timeoutMs: 50 }), { code: "DASK_ERR_COMM_TIMEOUT" });
  await peerSawClose; // the half-open comm was aborted, not leaked
});

test("listen: a 2026-style client that writes its handshake and a request at once is served", async () => {
  const { address } = await pingServer();
  const raw = await rawSocket(address);
  const hs = readFileSync(VECTORS_2026 + "python-client/000-handshake.to-scheduler.bin");
  raw.socket.write(Buffer.concat([hs, Buffer.from(packTcpMessage([encode({ op: "ping", reply: true })]))]));
  const reply = deferred<unknown>();
  raw.socket.on("data", () => {
    const all = raw.received();
    const first = 8 + Number(all.readBigUInt64LE(0));
    if (all.length < first + 8 || all.length < first + 8 + Number(all.readBigUInt64LE(first))) return;
    const len = Number(all.readBigUInt64LE(first + 16));
    reply.resolve(decode(all.subarray(first + 24, first + 24 + len)));
  });
  assert.equal(await reply.promise, "pong");
});

test("a scheduler-style comm (deserialize: false) relays Serialized values byte-identical", async () => {
  const relayed: unknown[] = [];
  const server = new Server({ handlers: { relay: (a) => (relayed.push(a["data"]), a["data"]) } });
  cleanup.push(() => server.close());
  const address = await server.listen("tcp://127.0.0.1:0", { codec: serializeCodec({ deserialize: false }) });
  const comm = await connect(address);
  cleanup.push(() => comm.abort());
  const values = new Float64Array([0, 1.5, -2, 1e300]);
  const back = await sendRecv(comm, { op: "relay", data: toSerialize(values) });
  // The relay saw an opaque Serialized (header + frames), not a Float64Array...
  assert.ok(relayed[0] instanceof Serialized);
  // ...and the client, which deserializes, gets the array back.
  assert.deepEqual(back, values);
});
