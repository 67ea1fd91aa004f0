// LIVE: `dask-wasm gateway` (src/gateway/gateway.node.ts) in this process on 127.0.0.1:0, in
// front of Debian's real dask-scheduler, over real sockets. The worker side is a GatewayLink
// (src/gateway/link.ts) on Node's global WebSocket (undici), used directly through
// link.connect / link.listen: the test process never registers the link as its "tcp" backend,
// so its own connects (and the gateway's) stay real TCP. Raw `ws` clients play workers that
// misbehave or come from another origin.
//
// No sleeps: gateway-side events are awaited through its log lines, each wait with a deadline.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { WebSocket as WsClient } from "ws";
import { Gateway, SOCKET_BUFFER_BYTES } from "../../src/gateway/gateway.node.ts";
import { GatewayLink } from "../../src/gateway/link.ts";
import { encodeMux, MuxType, decodeMux, muxText } from "../../src/gateway/mux.ts";
import { parseAddress } from "../../src/comm/address.ts";
import { exchangeHandshake } from "../../src/comm/handshake.ts";
import { sendRecv } from "../../src/comm/rpc.ts";
import { Server } from "../../src/comm/server.ts";
import { CommError, type Comm } from "../../src/comm/comm.ts";
import { DaskError } from "../../src/errors.ts";
import { startScheduler, runPythonScript, stopAll, type Scheduler } from "../helpers/dask.ts";

const WAIT_MS = 30_000;

let scheduler: Scheduler;
let gateway: Gateway;
let wsUrl: string;
const logLines: string[] = [];
const logWaiters: Array<{ re: RegExp; from: number; resolve: () => void }> = [];
const cleanup: Array<() => unknown> = [];

function onLog(level: string, message: string): void {
  logLines.push(`${level}: ${message}`);
  for (const w of [...logWaiters]) {
    if (logLines.slice(w.from).some((l) => w.re.test(l))) {
      logWaiters.splice(logWaiters.indexOf(w), 1);
      w.resolve();
    }
  }
}

/** Resolves once the gateway logs a line matching `re` at or after log index `from`. */
function gatewayLogged(re: RegExp, from: number): Promise<void> {
  if (logLines.slice(from).some((l) => re.test(l))) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not log ${re} within ${WAIT_MS} ms:\n${logLines.slice(from).join("\n")}`)), WAIT_MS);
    logWaiters.push({ re, from, resolve: () => (clearTimeout(timer), resolve()) });
  });
}

before(async () => {
  scheduler = await startScheduler();
  gateway = new Gateway({ scheduler: scheduler.address, log: onLog });
  const url = await gateway.start();
  wsUrl = url.replace(/^http/, "ws") + "/worker";
});

after(async () => {
  for (const f of cleanup.reverse()) await f();
  await gateway?.close();
  await stopAll();
});

async function openLink(): Promise<GatewayLink> {
  const link = await GatewayLink.open(wsUrl);
  cleanup.push(() => link.close());
  return link;
}

/** A handshaken comm to the scheduler through `link`. */
async function schedulerComm(link: GatewayLink): Promise<Comm> {
  const comm = await link.connect(parseAddress(scheduler.address));
  cleanup.push(() => comm.abort());
  await exchangeHandshake(comm);
  return comm;
}

/**
 * A link with a scheduler comm (`keep`) and one raw TCP peer connected to the link's registered
 * address; `c` is that peer's comm as the link accepted it. `paused`: the peer never reads.
 */
async function linkWithPeer(opts: { paused?: boolean } = {}): Promise<{ link: GatewayLink; keep: Comm; peer: net.Socket; c: Comm }> {
  const link = await openLink();
  let onAccepted!: (c: Comm) => void;
  const accepted = new Promise<Comm>((r) => (onAccepted = r));
  const listener = await link.listen((c) => onAccepted(c));
  const keep = await schedulerComm(link);
  const { port } = parseAddress(listener.address);
  const peer = net.connect({ host: "127.0.0.1", port });
  cleanup.push(() => peer.destroy());
  if (opts.paused) {
    peer.pause();
    await new Promise<void>((r) => peer.once("connect", () => r()));
  }
  return { link, keep, peer, c: await accepted };
}

async function status(): Promise<{ scheduler: string; workers: Array<{ id: number; address: string; channels: number }> }> {
  const res = await fetch(gateway.url + "/status");
  assert.equal(res.status, 200);
  return (await res.json()) as never;
}

/** A raw `ws` client; resolves once open (or rejects with the HTTP status it was refused with). */
function rawClient(opts: { origin?: string } = {}): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const ws = new WsClient(wsUrl, { origin: opts.origin });
    cleanup.push(() => ws.terminate());
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once("error", reject);
  });
}

function closedWith(ws: WsClient): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

function codeOf(e: unknown): string {
  assert.ok(e instanceof DaskError, `expected a DaskError, got ${String(e)}`);
  return e.code;
}

test("/status names the scheduler; a link OPENs the scheduler and a dask handshake + identity RPC go through", async () => {
  const s = await status();
  assert.equal(s.scheduler, scheduler.address);
  const link = await openLink();
  const comm = await schedulerComm(link);
  assert.ok(comm.handshakeInfo, "handshake done");
  assert.equal(typeof comm.handshakeInfo.pickleProtocol, "number");
  const id = (await sendRecv(comm, { op: "identity" })) as Record<string, unknown>;
  assert.equal(id["type"], "Scheduler");
  assert.equal(id["address"], scheduler.address);
  // The same comm keeps working for a second RPC (bytes of both directions relayed in order).
  const again = (await sendRecv(comm, { op: "identity" })) as Record<string, unknown>;
  assert.equal(again["id"], id["id"]);
  assert.ok(link.stats.bytesIn > 0 && link.stats.bytesOut > 0);
  assert.ok((await status()).workers.some((w) => w.channels >= 1), "the gateway counts the open channel");
});

test("OPEN to an address that is neither the scheduler nor a worker -> coded DASK_ERR_GATEWAY_REFUSED; the link lives on", async () => {
  // A real listener the gateway COULD reach: the refusal is policy, not a failed connect.
  const bystander = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => bystander.listen(0, "127.0.0.1", r));
  cleanup.push(() => new Promise<void>((r) => bystander.close(() => r())));
  const port = (bystander.address() as net.AddressInfo).port;
  const link = await openLink();
  const refused = await link.connect(parseAddress(`tcp://127.0.0.1:${port}`)).then(
    () => "connected",
    (e: unknown) => codeOf(e),
  );
  assert.equal(refused, "DASK_ERR_GATEWAY_REFUSED");
  const badScheme = await link.connect(parseAddress("inproc://x/1")).then(() => "connected", codeOf);
  assert.equal(badScheme, "DASK_ERR_ADDRESS");
  const comm = await schedulerComm(link);
  assert.equal(((await sendRecv(comm, { op: "identity" })) as Record<string, unknown>)["type"], "Scheduler");
});

test("LISTEN: a real Python peer connects to the registered address and reaches the link as an accepted comm", async () => {
  const link = await openLink();
  const accepted: Comm[] = [];
  const server = new Server({ id: "LinkPeer-1", handlers: { nbytes: (a) => (a["data"] as Uint8Array).length } });
  const listener = await link.listen((comm) => {
    accepted.push(comm);
    void exchangeHandshake(comm).then(() => server.handleComm(comm), () => comm.abort());
  });
  assert.match(listener.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.ok((await status()).workers.some((w) => w.address === listener.address), "/status lists the address");
  const out = await runPythonScript(
    [
      "import asyncio, json, sys",
      "from distributed.core import rpc",
      "async def main():",
      "    r = rpc(sys.argv[1])",
      "    ident = await r.identity()",
      "    data = bytes(range(256)) * 8192",
      "    back = await r.echo(data=data)",
      "    n = await r.nbytes(data=data)",
      "    await r.close_rpc()",
      "    print(json.dumps({'type': ident['type'], 'id': ident['id'], 'echo_same': back == data, 'n': n, 'sent': len(data)}))",
      "asyncio.run(main())",
    ].join("\n"),
    [listener.address],
  );
  const got = JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, unknown>;
  assert.deepEqual(got, { type: "Server", id: "LinkPeer-1", echo_same: true, n: 256 * 8192, sent: 256 * 8192 });
  assert.ok(accepted.length >= 1);
  assert.match(accepted[0]!.peerAddress, /^tcp:\/\/127\.0\.0\.1:\d+$/, "the peer's address as the gateway saw it");
  // A second listen on the same link is refused: one address per worker.
  assert.equal(await link.listen(() => {}).then(() => "listened", codeOf), "DASK_ERR_COMM_LISTEN");
});

test("one gateway worker may OPEN another's registered address (worker-to-worker get_data path)", async () => {
  const a = await openLink();
  const b = await openLink();
  const listener = await a.listen((comm) => {
    void exchangeHandshake(comm).then(() => new Server({ id: "worker-a" }).handleComm(comm), () => comm.abort());
  });
  const comm = await b.connect(parseAddress(listener.address));
  cleanup.push(() => comm.abort());
  await exchangeHandshake(comm);
  assert.equal(((await sendRecv(comm, { op: "identity" })) as Record<string, unknown>)["id"], "worker-a");
});

test("closing the link frees its address: /status drops it and a TCP connect is refused", async () => {
  const link = await openLink();
  const listener = await link.listen((comm) => comm.abort());
  const comm = await schedulerComm(link);
  const { port } = parseAddress(listener.address);
  // Reachable while the link is up.
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve()));
    s.once("error", reject);
  });
  const mark = logLines.length;
  link.close();
  assert.equal(codeOf(await link.closed), "DASK_ERR_GATEWAY_CLOSED");
  await assert.rejects(comm.read(), (e: unknown) => e instanceof CommError, "the channel ended with the link");
  await gatewayLogged(new RegExp(`\\(${listener.address.replace(/[.]/g, "\\.")}\\) closed`), mark);
  assert.ok(!(await status()).workers.some((w) => w.address === listener.address), "/status still lists the freed address");
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve(null)));
    s.once("error", resolve);
  });
  assert.equal(err?.code, "ECONNREFUSED");
});

test("Origin: a cross-origin WebSocket is refused with 403, a same-origin one and one without Origin are accepted", async () => {
  const refused = await rawClient({ origin: "http://evil.example" }).then(
    () => 0,
    (e: { status?: number }) => e.status ?? -1,
  );
  assert.equal(refused, 403);
  const sameHostOtherPort = await rawClient({ origin: "http://127.0.0.1:1" }).then(
    () => 0,
    (e: { status?: number }) => e.status ?? -1,
  );
  assert.equal(sameHostOtherPort, 403, "a different port is a different origin");
  const nullOrigin = await rawClient({ origin: "null" }).then(
    () => 0,
    (e: { status?: number }) => e.status ?? -1,
  );
  assert.equal(nullOrigin, 403);
  const same = await rawClient({ origin: gateway.url });
  assert.equal(same.readyState, WsClient.OPEN);
  const none = await rawClient();
  assert.equal(none.readyState, WsClient.OPEN);
  // The accepted same-origin socket is a working link: LISTEN is answered with LISTENING.
  const reply = new Promise<Uint8Array>((r) => same.once("message", (d: Buffer) => r(new Uint8Array(d))));
  same.send(encodeMux(MuxType.LISTEN, 1));
  const m = decodeMux(await reply);
  assert.equal(m.type, MuxType.LISTENING);
  assert.match(muxText(m.payload), /^tcp:\/\/127\.0\.0\.1:\d+$/);
});

test("a malformed message (3 bytes, type 99, a text message, a gateway-only type, OPEN on an even channel) closes only that link", async () => {
  const good = await openLink();
  const comm = await schedulerComm(good);
  const cases: Array<[string, (ws: WsClient) => void]> = [
    ["3 bytes", (ws) => ws.send(Uint8Array.of(3, 1, 0))],
    ["type 99", (ws) => ws.send(Uint8Array.of(99, 1, 0, 0, 0))],
    ["text", (ws) => ws.send("hello")],
    ["OPENED from a worker", (ws) => ws.send(encodeMux(MuxType.OPENED, 1))],
    ["OPEN on channel 2", (ws) => ws.send(encodeMux(MuxType.OPEN, 2, scheduler.address))],
  ];
  for (const [what, send] of cases) {
    const before = (await status()).workers.length;
    const bad = await rawClient();
    assert.equal((await status()).workers.length, before + 1, `${what}: the raw link is registered`);
    const closed = closedWith(bad);
    send(bad);
    const c = await closed;
    assert.deepEqual(c, { code: 1002, reason: "DASK_ERR_GATEWAY_MESSAGE" }, what);
    assert.equal((await status()).workers.length, before, `${what}: the bad link is gone`);
    // The well-behaved link's channel is untouched.
    const id = (await sendRecv(comm, { op: "identity" })) as Record<string, unknown>;
    assert.equal(id["type"], "Scheduler", what);
  }
});

test("a peer's TCP close reaches the link as the end of that channel only", async () => {
  const { link, keep, peer, c } = await linkWithPeer();
  const read = c.read();
  peer.end();
  await assert.rejects(read, (e: unknown) => codeOf(e) === "DASK_ERR_COMM_CLOSED");
  assert.equal(((await sendRecv(keep, { op: "identity" })) as Record<string, unknown>)["type"], "Scheduler");
  assert.equal(link.stats.channelsOpen, 1, "only the scheduler channel is left");
});

// A regression here is a hang (the identity reply never comes): the deadline makes it a failure.
test("backpressure: a TCP peer that stops reading and then dies does not leave the worker's link paused", { timeout: 60_000 }, async () => {
  // A peer that never reads: the gateway's socket fills up.
  const { keep, peer, c } = await linkWithPeer({ paused: true });
  // Spy on the gateway's relay socket (the server side of `peer`): the moment its buffer passes
  // SOCKET_BUFFER_BYTES is the moment the gateway pauses this worker's WebSocket.
  const write = net.Socket.prototype.write;
  let onFull!: () => void;
  const full = new Promise<void>((r) => (onFull = r));
  net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<typeof write>) {
    const ok = write.apply(this, args);
    if (this.remotePort === peer.localPort && this.writableLength > SOCKET_BUFFER_BYTES) onFull();
    return ok;
  } as typeof write;
  try {
    // 64 MiB: more than loopback buffers and SOCKET_BUFFER_BYTES hold, written as DATA over the link.
    void c.write(new Uint8Array(64 * 1024 * 1024)).catch(() => {});
    await full;
  } finally {
    net.Socket.prototype.write = write;
  }
  peer.destroy();
  // The link's other channel must still work: the gateway resumed reading this worker.
  const id = (await sendRecv(keep, { op: "identity" })) as Record<string, unknown>;
  assert.equal(id["type"], "Scheduler");
});

test("a TCP peer that stops reading does not stall the worker's other channels while its buffer is under the cap", { timeout: 60_000 }, async () => {
  const { keep, peer, c } = await linkWithPeer({ paused: true });
  // 16 MiB towards a peer that reads nothing: more than loopback buffers hold, less than the cap.
  const writing = c.write(new Uint8Array(16 * 1024 * 1024));
  await writing; // the link handed it all to its WebSocket
  // The scheduler channel of the same worker still answers, several times over.
  for (let i = 0; i < 3; i++) assert.equal(((await sendRecv(keep, { op: "identity" })) as Record<string, unknown>)["type"], "Scheduler");
  peer.destroy();
});

test("many channels at once on one link: 16 concurrent comms to the scheduler each echo their own 1 MiB payload", async () => {
  const link = await openLink();
  const comms = await Promise.all(Array.from({ length: 16 }, () => schedulerComm(link)));
  assert.equal(new Set(comms.map((c) => c.localAddress)).size, 16, "one channel each");
  const replies = await Promise.all(
    comms.map(async (c, i) => {
      const data = new Uint8Array(1024 * 1024).fill(i + 1);
      data[0] = 255 - i;
      const back = (await sendRecv(c, { op: "echo", data })) as Uint8Array;
      return back.length === data.length && back[0] === 255 - i && back.every((b, j) => j === 0 || b === i + 1);
    }),
  );
  assert.deepEqual(replies, comms.map(() => true));
});
