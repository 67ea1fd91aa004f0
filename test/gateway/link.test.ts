// GatewayLink (src/gateway/link.ts) against a scripted gateway: a fake WebSocketLike whose
// events the test fires synchronously, so orderings a real socket produces only sometimes (OPENED
// and the peer's first DATA in one turn) happen every run. Channels are independent; a
// malformed gateway message closes the whole link with a coded error; refusals keep their code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GatewayLink } from "../../src/gateway/link.ts";
import { decodeMux, encodeMux, MuxType, muxText, type MuxMessage } from "../../src/gateway/mux.ts";
import type { WebSocketLike } from "../../src/comm/ws.ts";
import { parseAddress } from "../../src/comm/address.ts";
import { packTcpMessage, FrameReader } from "../../src/protocol/frames.ts";
import { encode, decode } from "../../src/protocol/msgpack.ts";
import { DaskError } from "../../src/errors.ts";

type Listener = (event: { data?: unknown; code?: number; reason?: string; message?: string }) => void;

class FakeSocket implements WebSocketLike {
  binaryType = "blob";
  readyState = 0;
  sent: MuxMessage[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  #listeners = new Map<string, Listener[]>();
  #waiters: Array<() => void> = [];
  addEventListener(type: string, listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }
  send(data: Uint8Array | ArrayBuffer): void {
    // Copied: the link may reuse nothing, but a recorded view must not change under the test.
    this.sent.push(decodeMux(new Uint8Array(data instanceof ArrayBuffer ? data : data.slice())));
    for (const w of this.#waiters.splice(0)) w();
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  fire(type: string, event: Parameters<Listener>[0] = {}): void {
    if (type === "open") this.readyState = 1;
    for (const l of this.#listeners.get(type) ?? []) l(event);
  }
  /** The gateway -> worker message, as an ArrayBuffer (binaryType "arraybuffer"). */
  deliver(bytes: Uint8Array): void {
    this.fire("message", { data: bytes.slice().buffer });
  }
  /** Resolves once the link has sent `n` messages in total. */
  async sentCount(n: number): Promise<MuxMessage[]> {
    while (this.sent.length < n) await new Promise<void>((r) => this.#waiters.push(r));
    return this.sent;
  }
}

async function fakeLink(): Promise<{ link: GatewayLink; ws: FakeSocket }> {
  const ws = new FakeSocket();
  const opening = GatewayLink.open("ws://gateway.test/worker", () => {
    queueMicrotask(() => ws.fire("open"));
    return ws;
  });
  const link = await opening;
  assert.equal(ws.binaryType, "arraybuffer");
  return { link, ws };
}

/** A dask message as TCP bytes (what the gateway relays in DATA). */
const daskBytes = (msg: unknown): Uint8Array => packTcpMessage([encode(msg)]);

function codeOf(e: unknown): string {
  assert.ok(e instanceof DaskError, `expected a DaskError, got ${String(e)}`);
  return e.code;
}

test("OPEN carries the address on an odd channel; the peer's first bytes dispatched in the same turn as OPENED are not lost", async () => {
  const { link, ws } = await fakeLink();
  const connecting = link.connect(parseAddress("tcp://10.0.0.1:8786"));
  const [open] = await ws.sentCount(1);
  assert.equal(open!.type, MuxType.OPEN);
  assert.equal(open!.channel % 2, 1);
  assert.equal(muxText(open!.payload), "tcp://10.0.0.1:8786");
  // One TCP read at the gateway, two WS messages, one synchronous dispatch: no await between them.
  ws.deliver(encodeMux(MuxType.OPENED, open!.channel));
  ws.deliver(encodeMux(MuxType.DATA, open!.channel, daskBytes({ compression: null, "pickle-protocol": 5 })));
  const comm = await connecting;
  assert.deepEqual(await comm.read(), { compression: null, "pickle-protocol": 5 });
  // Writes go out as DATA on the same channel, with dask's TCP framing untouched.
  await comm.write({ op: "identity" });
  const data = ws.sent.at(-1)!;
  assert.equal(data.type, MuxType.DATA);
  assert.equal(data.channel, open!.channel);
  const reader = new FrameReader();
  reader.push(data.payload);
  assert.deepEqual(decode(reader.next()![0]!), { op: "identity" });
  link.close();
});

test("channels are independent: ids 1, 3, 5; CLOSE of one ends that comm only; a closed channel's late DATA is dropped", async () => {
  const { link, ws } = await fakeLink();
  const conns = [link.connect(parseAddress("tcp://a:1")), link.connect(parseAddress("tcp://b:2")), link.connect(parseAddress("tcp://c:3"))];
  const opens = await ws.sentCount(3);
  assert.deepEqual(opens.map((m) => m.channel), [1, 3, 5]);
  for (const m of opens) ws.deliver(encodeMux(MuxType.OPENED, m.channel));
  const [a, b, c] = await Promise.all(conns);
  assert.equal(link.stats.channelsOpen, 3);
  const aRead = a!.read();
  ws.deliver(encodeMux(MuxType.CLOSE, 1, "connection reset"));
  assert.equal(codeOf(await aRead.then(() => null, (e: unknown) => e)), "DASK_ERR_COMM_CLOSED");
  ws.deliver(encodeMux(MuxType.DATA, 1, daskBytes("late"))); // dropped, not a protocol error
  ws.deliver(encodeMux(MuxType.DATA, 3, daskBytes("to b")));
  assert.equal(await b!.read(), "to b");
  assert.equal(link.stats.channelsOpen, 2);
  // Closing c locally tells the gateway with an orderly (empty-reason) CLOSE.
  await c!.close();
  const last = ws.sent.at(-1)!;
  assert.deepEqual([last.type, last.channel, muxText(last.payload)], [MuxType.CLOSE, 5, ""]);
  assert.equal(link.stats.channelsOpen, 1);
  link.close();
});

test("ERROR keeps the gateway's code (or defaults to DASK_ERR_GATEWAY_REFUSED); the refused channel holds nothing", async () => {
  const { link, ws } = await fakeLink();
  const one = link.connect(parseAddress("tcp://x:1"));
  const two = link.connect(parseAddress("tcp://y:2"));
  const [m1, m2] = await ws.sentCount(2);
  ws.deliver(encodeMux(MuxType.ERROR, m1!.channel, "DASK_ERR_GATEWAY_REFUSED tcp://x:1 is neither the scheduler nor one of its workers"));
  ws.deliver(encodeMux(MuxType.ERROR, m2!.channel, "no"));
  const e1 = await one.then(() => null, (e: unknown) => e);
  assert.equal(codeOf(e1), "DASK_ERR_GATEWAY_REFUSED");
  assert.match((e1 as Error).message, /tcp:\/\/x:1 is neither/);
  assert.equal(codeOf(await two.then(() => null, (e: unknown) => e)), "DASK_ERR_GATEWAY_REFUSED");
  assert.equal(link.stats.channelsOpen, 0);
  const listening = link.listen(() => {});
  const [, , l] = await ws.sentCount(3);
  ws.deliver(encodeMux(MuxType.ERROR, l!.channel, "DASK_ERR_COMM_LISTEN address in use"));
  assert.equal(codeOf(await listening.then(() => null, (e: unknown) => e)), "DASK_ERR_COMM_LISTEN");
  link.close();
});

test("LISTEN resolves with the registered address; ACCEPT hands out a comm; ACCEPT without a listener is CLOSEd back", async () => {
  const { link, ws } = await fakeLink();
  ws.deliver(encodeMux(MuxType.ACCEPT, 2, "tcp://127.0.0.1:5000"));
  const refusedBack = ws.sent.at(-1)!;
  assert.deepEqual([refusedBack.type, refusedBack.channel, muxText(refusedBack.payload)], [MuxType.CLOSE, 2, "not listening"]);
  const accepted: Array<{ peerAddress: string; read(): Promise<unknown> }> = [];
  const listening = link.listen((c) => accepted.push(c));
  const [, lst] = await ws.sentCount(2);
  assert.equal(lst!.type, MuxType.LISTEN);
  ws.deliver(encodeMux(MuxType.LISTENING, lst!.channel, "tcp://127.0.0.1:4242"));
  assert.equal((await listening).address, "tcp://127.0.0.1:4242");
  ws.deliver(encodeMux(MuxType.ACCEPT, 4, "tcp://127.0.0.1:5001"));
  ws.deliver(encodeMux(MuxType.DATA, 4, daskBytes({ op: "get_data" })));
  assert.equal(accepted.length, 1);
  assert.equal(accepted[0]!.peerAddress, "tcp://127.0.0.1:5001");
  assert.deepEqual(await accepted[0]!.read(), { op: "get_data" });
  link.close();
});

test("a malformed gateway message (3 bytes, text, a worker-only type) closes the whole link with DASK_ERR_GATEWAY_MESSAGE", async () => {
  const bad: Array<[string, (ws: FakeSocket) => void]> = [
    ["3 bytes", (ws) => ws.deliver(Uint8Array.of(3, 1, 0))],
    ["text", (ws) => ws.fire("message", { data: "hello" })],
    ["OPEN from the gateway", (ws) => ws.deliver(encodeMux(MuxType.OPEN, 2, "tcp://a:1"))],
    ["type 99", (ws) => ws.deliver(Uint8Array.of(99, 0, 0, 0, 0))],
  ];
  for (const [what, send] of bad) {
    const { link, ws } = await fakeLink();
    const pending = link.connect(parseAddress("tcp://a:1"));
    const open = link.connect(parseAddress("tcp://b:2"));
    const msgs = await ws.sentCount(2);
    ws.deliver(encodeMux(MuxType.OPENED, msgs[1]!.channel));
    const comm = await open;
    const reading = comm.read();
    send(ws);
    assert.equal(codeOf(await link.closed), "DASK_ERR_GATEWAY_MESSAGE", what);
    assert.deepEqual(ws.closedWith, { code: 1002, reason: "DASK_ERR_GATEWAY_MESSAGE" }, what);
    assert.equal(codeOf(await pending.then(() => null, (e: unknown) => e)), "DASK_ERR_GATEWAY_MESSAGE", `${what}: the pending OPEN`);
    await assert.rejects(reading, DaskError, `${what}: the open channel ended`);
    assert.equal(codeOf(await link.connect(parseAddress("tcp://c:3")).then(() => null, (e: unknown) => e)), "DASK_ERR_GATEWAY_CLOSED", what);
  }
});

test("the WebSocket closing ends every channel with DASK_ERR_GATEWAY_CLOSED; writes then fail", async () => {
  const { link, ws } = await fakeLink();
  const connecting = link.connect(parseAddress("tcp://a:1"));
  const [m] = await ws.sentCount(1);
  ws.deliver(encodeMux(MuxType.OPENED, m!.channel));
  const comm = await connecting;
  ws.fire("close", { code: 1006, reason: "" });
  const why = await link.closed;
  assert.equal(codeOf(why), "DASK_ERR_GATEWAY_CLOSED");
  assert.match(why.message, /1006/);
  await assert.rejects(comm.write({ op: "x" }), DaskError);
  assert.equal(link.stats.channelsOpen, 0);
});

test("a connect that times out gives its channel up: DASK_ERR_COMM_TIMEOUT, CLOSE sent, and a late OPENED is answered with CLOSE", async () => {
  const { link, ws } = await fakeLink();
  const connecting = link.connect(parseAddress("tcp://10.0.0.9:1"), { timeoutMs: 20 });
  const [open] = await ws.sentCount(1);
  await assert.rejects(connecting, (e) => codeOf(e) === "DASK_ERR_COMM_TIMEOUT");
  const [, close] = await ws.sentCount(2);
  assert.equal(close!.type, MuxType.CLOSE);
  assert.equal(close!.channel, open!.channel);
  // The gateway's socket connected after all: the link does not want it.
  ws.deliver(encodeMux(MuxType.OPENED, open!.channel));
  const [, , again] = await ws.sentCount(3);
  assert.equal(again!.type, MuxType.CLOSE);
  assert.equal(again!.channel, open!.channel);
  assert.equal(link.stats.channelsOpen, 0);
  // The link itself is fine: another connect still works.
  const next = link.connect(parseAddress("tcp://10.0.0.9:2"));
  const [, , , open2] = await ws.sentCount(4);
  ws.deliver(encodeMux(MuxType.OPENED, open2!.channel));
  const comm = await next;
  assert.equal(comm.closed, false);
  link.close();
});

// Without backpressure the queue is never polled: the deadline turns that hang into a failure.
test("backpressure: a channel write waits while the WebSocket has more than 8 MiB queued, then finishes", { timeout: 30_000 }, async () => {
  const { link, ws } = await fakeLink();
  const connecting = link.connect(parseAddress("tcp://10.0.0.3:1"));
  const [open] = await ws.sentCount(1);
  ws.deliver(encodeMux(MuxType.OPENED, open!.channel));
  const comm = await connecting;
  // The queue the link polls: full until the test empties it; every read is counted, so the
  // test waits for the writer to have looked several times instead of sleeping.
  let buffered = 9 * 1024 * 1024;
  let reads = 0;
  let onReads: (() => void) | undefined;
  const polledFiveTimes = new Promise<void>((r) => (onReads = r));
  Object.defineProperty(ws, "bufferedAmount", {
    get: () => {
      if (++reads === 5) onReads?.();
      return buffered;
    },
  });
  let done = false;
  // 3 MiB of payload: at least three DATA messages of <= 1 MiB.
  const writing = comm.write({ op: "big", data: new Uint8Array(3 * 1024 * 1024) }).then(() => (done = true));
  await polledFiveTimes;
  // Polled five times while full: still waiting after its first chunk.
  assert.equal(done, false);
  assert.equal(ws.sent.filter((m) => m.type === MuxType.DATA).length, 1);
  buffered = 0;
  await writing;
  const data = ws.sent.filter((m) => m.type === MuxType.DATA);
  assert.ok(data.length >= 4, `${data.length} DATA messages`);
  assert.ok(data.every((m) => m.payload.length <= 1024 * 1024));
  // The bytes reassemble into the dask message that was written.
  const reader = new FrameReader();
  for (const m of data) reader.push(m.payload.slice());
  const frames = reader.next();
  assert.ok(frames);
  const msg = decode(frames[0]!) as { op: string; data: Uint8Array };
  assert.equal(msg.op, "big");
  assert.equal(msg.data.length, 3 * 1024 * 1024);
  link.close();
});
