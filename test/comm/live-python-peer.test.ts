// LIVE: Debian's Python distributed 2022.12.1 as the CONNECTING side against our Server (its
// connector reads our handshake first, then writes: DASK-PROTOCOL §3), and our pool fetching
// from a real Python worker with the get_data "OK" ack (§7.1).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { NO_REPLY, Server } from "../../src/comm/server.ts";
import { ConnectionPool } from "../../src/comm/pool.ts";
import { getField } from "../../src/comm/rpc.ts";
import { connect } from "../../src/comm/registry.ts";
import { runPythonClient, runPythonScript, startPythonWorker, startScheduler, stopAll } from "../helpers/dask.ts";

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await stopAll();
});

const PY_PEER = String.raw`
import asyncio, sys
from distributed.core import rpc, connect, ConnectionPool
from distributed.worker import get_data_from_worker
from distributed.batched import BatchedSend

addr = sys.argv[1]

async def main():
    async with rpc(addr) as r:
        ident = await r.identity()
        print("identity", ident["type"], ident["id"])
        print("echo", await r.echo(data=b"xyz"))
        print("unknown", await r.nosuch())
        try:
            await r.fail(why="test")
        except Exception as e:
            print("error", type(e).__name__, str(e))
        print("add", await r.add(x=1, y=2))
    pool = await ConnectionPool(limit=5)
    resp = await get_data_from_worker(pool, ["x"], addr)
    print("get_data", resp["status"], dict(resp["data"]))
    print("after-ack", await pool(addr).add(x=40, y=2))
    await pool.close()
    comm = await connect(addr)
    await comm.write({"op": "connection_stream", "reply": False})
    b = BatchedSend(interval="2ms")
    b.start(comm)
    for i in range(5):
        b.send({"op": "note", "i": i})
    b.send({"op": "close-stream"})
    await b.close()
    print("stream done")

asyncio.run(main())
`;

test("a Python rpc/pool/BatchedSend peer talks to our Server", async () => {
  const notes: unknown[] = [];
  const acks: unknown[] = [];
  const server = new Server({
    id: "dask-wasm-test",
    handlers: {
      add: (a) => (a["x"] as number) + (a["y"] as number),
      fail: (a) => {
        throw new TypeError(`refused: ${String(a["why"])}`);
      },
      get_data: async (a, ctx) => {
        await ctx.comm.write({ status: "OK", data: Object.fromEntries((a["keys"] as string[]).map((k) => [k, 42])) });
        acks.push(await ctx.comm.read());
        return NO_REPLY;
      },
    },
    streamHandlers: { note: (m) => void notes.push(m["i"]) },
  });
  servers.push(server);
  const address = await server.listen("tcp://127.0.0.1:0");
  const out = await runPythonScript(PY_PEER, [address]);
  const lines = out.trim().split("\n");
  assert.deepEqual(lines, [
    "identity Server dask-wasm-test",
    "echo b'xyz'",
    "unknown None",
    // A str `exception` in uncaught-error becomes Exception(str) on a Python client (§10.2).
    "error Exception TypeError: refused: test",
    "add 3",
    "get_data OK {'x': 42}",
    "after-ack 42",
    "stream done",
  ]);
  assert.deepEqual(acks, ["OK"]);
  assert.deepEqual(notes, [0, 1, 2, 3, 4]);
});

test("our pool fetches from a real Python worker with get_data + OK ack, then reuses the comm", async () => {
  const scheduler = await startScheduler();
  const worker = await startPythonWorker(scheduler.address, { nthreads: 1, name: "py-1" });
  // A real client scatters a value onto the worker.
  const scattered = await runPythonClient(scheduler.address, `[f] = client.scatter([{"a": [1, 2], "b": "text"}])\nprint(f.key)\nclient.publish_dataset(keep=f)`);
  const key = scattered.trim();
  let opened = 0;
  const pool = new ConnectionPool({ connect: async (a, o) => (opened++, connect(a, o)) });
  try {
    // serializers ["msgpack"]: Python answers with msgpack instead of pickle (§7.1).
    const reply = await pool.callWithAck(worker.address, { op: "get_data", keys: [key], who: null, max_connections: false, serializers: ["msgpack"] });
    assert.equal(getField(reply, "status"), "OK");
    const value = getField(getField(reply, "data"), key);
    assert.deepEqual(value, { a: [1, 2], b: "text" });
    // The worker read our ack (it asserts on it) and serves the next request on the same comm.
    const again = await pool.callWithAck(worker.address, { op: "get_data", keys: [key, "missing"], who: null, serializers: ["msgpack"] });
    assert.deepEqual(Object.keys(getField(again, "data") as object), [key]);
    assert.equal(getField(await pool.call(worker.address, { op: "identity" }), "type"), "Worker");
    assert.equal(opened, 1);
    assert.doesNotMatch(worker.log(), /Traceback|AssertionError/);
  } finally {
    await pool.close();
  }
});
