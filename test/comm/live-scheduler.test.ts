// LIVE: our comms against Debian's real dask-scheduler 2022.12.1 (DASK-PROTOCOL §3, §5, §9.1).
// Starts one scheduler for the file (127.0.0.1, port 0) and stops it in after().
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../../src/comm/registry.ts";
import { sendRecv, getField } from "../../src/comm/rpc.ts";
import { ConnectionPool, closePolitely } from "../../src/comm/pool.ts";
import { BatchedSend, splitBatch } from "../../src/comm/batched.ts";
import type { Comm } from "../../src/comm/comm.ts";
import { startScheduler, stopAll, type Scheduler } from "../helpers/dask.ts";

let scheduler: Scheduler;
const comms: Comm[] = [];

before(async () => {
  scheduler = await startScheduler();
});
after(async () => {
  for (const c of comms) c.abort();
  await stopAll();
});

async function dial(): Promise<Comm> {
  const c = await connect(scheduler.address, { timeoutMs: 30_000 });
  comms.push(c);
  return c;
}

test("connect + handshake with the real scheduler", async () => {
  const comm = await dial();
  const info = comm.handshakeInfo!;
  // The scheduler prefers lz4; we asked for none, so none it is. Pickle: min(4, 5).
  assert.equal(info.compression, null);
  assert.equal(info.pickleProtocol, 4);
  assert.equal(typeof info.remote["pickle-protocol"], "number");
  assert.equal(comm.peerAddress, scheduler.address);
  await closePolitely(comm);
});

test("identity says Scheduler and echo returns its data", async () => {
  const comm = await dial();
  const id = await sendRecv(comm, { op: "identity" });
  assert.equal(getField(id, "type"), "Scheduler");
  assert.equal(getField(id, "address"), scheduler.address);
  const bytes = new Uint8Array([0, 1, 2, 250]);
  assert.deepEqual(await sendRecv(comm, { op: "echo", data: bytes }), bytes);
  assert.deepEqual(await sendRecv(comm, { op: "echo", data: { nested: ["a", 1] } }), { nested: ["a", 1] });
  await closePolitely(comm);
});

test("an unknown op returns nil and the comm stays usable", async () => {
  const comm = await dial();
  assert.equal(await sendRecv(comm, { op: "definitely-not-an-op-" + comm.localAddress }), null);
  assert.equal(getField(await sendRecv(comm, { op: "identity" }), "type"), "Scheduler");
  await scheduler.waitFor(/No handler definitely-not-an-op-/);
});

test("versions tells the dask version (how dialects will be chosen)", async () => {
  const comm = await dial();
  const v = await sendRecv(comm, { op: "versions" });
  // The scheduler answers with its own get_versions(): {"host": {...}, "packages": {...}}.
  const packages = getField(v, "packages");
  assert.match(String(getField(packages, "distributed")), /^2022\.12\.1/);
  assert.match(String(getField(packages, "dask")), /^2022\.12\.1/);
  await closePolitely(comm);
});

test("a handler exception on the scheduler arrives as a RemoteError with exception_text", async () => {
  const comm = await dial();
  const name = "dataset-" + comm.localAddress;
  assert.deepEqual(await sendRecv(comm, { op: "publish_put", keys: [], name, data: 1, override: false, client: "c" }), { status: "OK", name });
  await assert.rejects(sendRecv(comm, { op: "publish_put", keys: [], name, data: 1, override: false, client: "c" }), (e: unknown) => {
    const err = e as { code: string; exceptionText: string; tracebackText: string };
    assert.equal(err.code, "DASK_ERR_RPC_REMOTE");
    assert.match(err.exceptionText, /KeyError.*already exists/);
    assert.match(err.tracebackText, /publish/);
    return true;
  });
  // Still usable after the error reply, as Python's own comms are.
  assert.equal(getField(await sendRecv(comm, { op: "identity" }), "type"), "Scheduler");
  assert.equal(await sendRecv(comm, { op: "publish_delete", name }), null);
  await closePolitely(comm);
});

test("a pool reuses one comm for sequential RPCs", async () => {
  let opened = 0;
  const pool = new ConnectionPool({ connect: async (a, o) => (opened++, connect(a, o)) });
  try {
    for (let i = 0; i < 4; i++) assert.equal(getField(await pool.call(scheduler.address, { op: "identity" }), "type"), "Scheduler");
    assert.deepEqual(await pool.call(scheduler.address, { op: "ncores" }), {});
    assert.equal(opened, 1);
    assert.equal(pool.idle, 1);
  } finally {
    await pool.close(); // sends {"op": "close", "reply": false}
  }
});

test("register a minimal client: stream-start first, then close-client + close-stream", async () => {
  const comm = await dial();
  const client = `Client-dask-wasm-${process.pid}-${comm.localAddress.split(":").pop()}`;
  const logBefore = scheduler.log().length;
  await comm.write({ op: "register-client", client, reply: false, versions: {} });
  const first = splitBatch(await comm.read());
  assert.equal(getField(first.ops[0], "op"), "stream-start");
  assert.equal(getField(first.ops[0], "error"), "");
  await scheduler.waitFor(new RegExp(`Receive client connection: ${client}`));
  const stream = new BatchedSend({ intervalMs: 10 });
  stream.start(comm);
  stream.send({ op: "close-client" }, { op: "close-stream" });
  await stream.close();
  assert.equal(await stream.ended, undefined);
  await scheduler.waitFor(new RegExp(`Remove client ${client}`));
  await scheduler.waitFor(new RegExp(`Close client connection: ${client}`));
  // Nothing went wrong on the scheduler's side of this exchange.
  assert.doesNotMatch(scheduler.log().slice(logBefore), /Traceback|ERROR|Exception/);
});
