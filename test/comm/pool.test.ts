// ConnectionPool bookkeeping over inproc servers: limit across addresses, idle eviction,
// removeAddress, close waking waiters; plus registerBackend for a custom scheme.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { ConnectionPool } from "../../src/comm/pool.ts";
import { Server, type RpcHandler } from "../../src/comm/server.ts";
import { connect, registerBackend } from "../../src/comm/registry.ts";
import { inprocConnect, inprocListen } from "../../src/comm/inproc.ts";
import type { Comm } from "../../src/comm/comm.ts";

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function inprocServer(handlers: Record<string, RpcHandler> = {}): Promise<string> {
  const s = new Server({ handlers: { ping: () => "pong", ...handlers } });
  servers.push(s);
  return s.listen("inproc://0");
}

test("at the limit, an idle comm to another address is evicted to make room", async () => {
  const a = await inprocServer();
  const b = await inprocServer();
  const opened: string[] = [];
  const pool = new ConnectionPool({ limit: 1, connect: async (addr, o) => (opened.push(addr), connect(addr, o)) });
  assert.equal(await pool.call(a, { op: "ping" }), "pong");
  assert.equal(await pool.call(b, { op: "ping" }), "pong"); // evicts a's idle comm
  assert.equal(await pool.call(a, { op: "ping" }), "pong"); // and back
  assert.deepEqual(opened, [a, b, a]);
  assert.equal(pool.open, 1);
  await pool.close();
});

test("removeAddress aborts that address's comms, idle and lent; close rejects waiters", async () => {
  let release!: () => void;
  let entered!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const inHold = new Promise<void>((r) => (entered = r));
  const a = await inprocServer({ hold: async () => (entered(), await held, "held") });
  const pool = new ConnectionPool({ limit: 1 });
  await pool.call(a, { op: "ping" });
  assert.equal(pool.idle, 1);
  await pool.removeAddress(a);
  assert.equal(pool.open, 0);
  const lent = pool.call(a, { op: "hold" });
  await inHold; // the comm is lent out and its request is being served
  const waiting = pool.call(a, { op: "ping" }); // limit 1: waits for the lent comm
  assert.equal(pool.open, 1);
  await pool.close();
  await assert.rejects(waiting, { code: "DASK_ERR_POOL_CLOSED" });
  await assert.rejects(lent, { code: "DASK_ERR_COMM_CLOSED" });
  release();
});

test("a pooled comm whose peer hung up while idle is skipped, not handed out", async () => {
  const s = new Server({ handlers: { ping: () => "pong" } });
  servers.push(s);
  const a = await s.listen("inproc://0");
  let opened = 0;
  const pool = new ConnectionPool({ connect: async (addr, o) => (opened++, connect(addr, o)) });
  await pool.call(a, { op: "ping" });
  for (const c of s.comms) c.abort(); // server drops the idle comm
  assert.equal(await pool.call(a, { op: "ping" }), "pong");
  assert.equal(opened, 2);
  await pool.close();
});

test("invalid limits are refused by name", () => {
  assert.throws(() => new ConnectionPool({ limit: 0 }), /options\.limit/);
});

test("registerBackend adds a scheme; connect runs the handshake over it", async () => {
  const seen: string[] = [];
  registerBackend("mem", {
    connect: (addr, o) => (seen.push(`connect ${addr.host}`), inprocConnect(addr.host, o)),
    listen: (addr, on, o) => (seen.push(`listen ${addr.host}`), inprocListen(addr.host, on, o)),
  });
  const s = new Server({ handlers: { ping: () => "pong" } });
  servers.push(s);
  await s.listen("mem://box");
  const comm: Comm = await connect("mem://box");
  assert.equal(comm.handshakeInfo?.pickleProtocol, 4);
  const pool = new ConnectionPool();
  assert.equal(await pool.call("mem://box", { op: "ping" }), "pong");
  await pool.close();
  comm.abort();
  assert.deepEqual(seen, ["listen box", "connect box", "connect box"]);
});
