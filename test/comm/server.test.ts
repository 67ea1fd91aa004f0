// Server + RPC + pool + batched streams between two of our own endpoints, over every
// transport we have (inproc and TCP on 127.0.0.1, port 0).
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../../src/comm/registry.ts";
import { NO_REPLY, Server } from "../../src/comm/server.ts";
import { sendRecv, sendRecvAck } from "../../src/comm/rpc.ts";
import { ConnectionPool } from "../../src/comm/pool.ts";
import { BatchedSend } from "../../src/comm/batched.ts";
import type { Comm } from "../../src/comm/comm.ts";
import { DaskError } from "../../src/errors.ts";

const TRANSPORTS = ["inproc://", "tcp://127.0.0.1:0"] as const;

/** A resolvable promise, for "this happened" signals without timers. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

for (const where of TRANSPORTS) {
  describe(`over ${where}`, () => {
    const servers: Server[] = [];
    const comms: Comm[] = [];
    after(async () => {
      for (const c of comms) c.abort();
      await Promise.all(servers.map((s) => s.close()));
    });

    async function serve(opts: ConstructorParameters<typeof Server>[0] = {}): Promise<{ server: Server; address: string; logs: string[] }> {
      const logs: string[] = [];
      const server = new Server({ ...opts, log: (level, message) => logs.push(`${level}: ${message}`) });
      servers.push(server);
      const address = await server.listen(where === "inproc://" ? "inproc://" + Math.random().toString(36).slice(2) : where);
      return { server, address, logs };
    }

    async function dial(address: string): Promise<Comm> {
      const c = await connect(address);
      comms.push(c);
      return c;
    }

    test("connect handshakes both ways and reports the negotiated values", async () => {
      const seen = deferred<Comm>();
      const { address } = await serve({
        handlers: {
          whoami: (_args, ctx) => {
            seen.resolve(ctx.comm);
            return { pickle: ctx.comm.handshakeInfo?.pickleProtocol };
          },
        },
      });
      const comm = await dial(address);
      assert.deepEqual(comm.handshakeInfo?.compression, null);
      assert.equal(comm.handshakeInfo?.pickleProtocol, 4);
      assert.deepEqual(comm.handshakeInfo?.remote["python"], [3, 11, 2]);
      assert.deepEqual(await sendRecv(comm, { op: "whoami" }), { pickle: 4 });
      const serverSide = await seen.promise;
      assert.equal(serverSide.peerAddress, comm.localAddress);
      if (where.startsWith("tcp")) assert.match(address, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
    });

    test("identity, echo, handler results, unknown op -> nil (logged once), comm stays usable", async () => {
      const { address, logs } = await serve({ id: "S-1", handlers: { add: (a) => (a["x"] as number) + (a["y"] as number) } });
      const comm = await dial(address);
      assert.deepEqual(await sendRecv(comm, { op: "identity" }), { type: "Server", id: "S-1" });
      assert.deepEqual(await sendRecv(comm, { op: "echo", data: new Uint8Array([1, 2, 3]) }), new Uint8Array([1, 2, 3]));
      assert.equal(await sendRecv(comm, { op: "add", x: 2, y: 40 }), 42);
      assert.equal(await sendRecv(comm, { op: "no-such-op" }), null);
      assert.equal(await sendRecv(comm, { op: "no-such-op" }), null);
      assert.equal(await sendRecv(comm, { op: "add", x: 1, y: 1 }), 2);
      assert.equal(logs.filter((l) => l.includes("No handler no-such-op")).length, 1);
    });

    test("a throwing handler becomes a RemoteError with the text; the comm stays usable", async () => {
      const { address } = await serve({
        handlers: {
          fail: () => {
            throw new RangeError("boom 17");
          },
          ok: () => "fine",
        },
      });
      const comm = await dial(address);
      await assert.rejects(sendRecv(comm, { op: "fail" }), (e: unknown) => {
        assert.ok(e instanceof DaskError);
        assert.equal(e.code, "DASK_ERR_RPC_REMOTE");
        assert.equal((e as unknown as { exceptionText: string }).exceptionText, "RangeError: boom 17");
        assert.match((e as unknown as { tracebackText: string }).tracebackText, /boom 17/);
        return true;
      });
      assert.equal(await sendRecv(comm, { op: "ok" }), "fine");
    });

    test("reply: false gets no reply; close: true closes after replying; op close replies OK", async () => {
      const got: unknown[] = [];
      const { address } = await serve({ handlers: { note: (a) => void got.push(a["n"]), ping: () => "pong" } });
      const comm = await dial(address);
      assert.equal(await sendRecv(comm, { op: "note", n: 1, reply: false }), undefined);
      assert.equal(await sendRecv(comm, { op: "ping" }), "pong"); // the note was not answered
      assert.deepEqual(got, [1]);
      assert.equal(await sendRecv(comm, { op: "ping", close: true }), "pong");
      assert.equal(comm.closed, true);
      const c2 = await dial(address);
      assert.equal(await sendRecv(c2, { op: "close", reply: true }), "OK");
      await assert.rejects(c2.read(), { code: "DASK_ERR_COMM_CLOSED" });
    });

    test("get_data-style exchange: reply, then the requester's OK ack read by the handler", async () => {
      const acks: unknown[] = [];
      const { address } = await serve({
        handlers: {
          get_data: async (args, ctx) => {
            await ctx.comm.write({ status: "OK", data: { [String((args["keys"] as string[])[0])]: 7 } });
            acks.push(await ctx.comm.read());
            return NO_REPLY;
          },
          after: () => "next",
        },
      });
      const comm = await dial(address);
      assert.deepEqual(await sendRecvAck(comm, { op: "get_data", keys: ["x"], who: null }), { status: "OK", data: { x: 7 } });
      assert.equal(await sendRecv(comm, { op: "after" }), "next");
      assert.deepEqual(acks, ["OK"]);
    });

    test("pool reuses one comm for sequential RPCs and opens more only for concurrent ones", async () => {
      let opened = 0;
      const release = deferred();
      const { address } = await serve({ handlers: { ping: () => "pong", hold: async () => (await release.promise, "held") } });
      const pool = new ConnectionPool({
        limit: 2,
        connect: async (a, o) => {
          opened++;
          return connect(a, o);
        },
      });
      try {
        for (let i = 0; i < 5; i++) assert.equal(await pool.call(address, { op: "ping" }), "pong");
        assert.equal(opened, 1);
        assert.equal(pool.idle, 1);
        const held = pool.call(address, { op: "hold" });
        assert.equal(await pool.call(address, { op: "ping" }), "pong");
        assert.equal(opened, 2);
        // At the limit: a third concurrent call waits for a comm to come back instead of failing.
        const third = pool.call(address, { op: "hold" });
        assert.equal(pool.open, 2);
        release.resolve();
        assert.deepEqual(await Promise.all([held, third]), ["held", "held"]);
        assert.equal(opened, 2);
        await pool.closeIdle();
        assert.equal(pool.open, 0);
        assert.equal(await pool.call(address, { op: "ping" }), "pong");
        assert.equal(opened, 3);
      } finally {
        await pool.close();
      }
      await assert.rejects(pool.call(address, { op: "ping" }), { code: "DASK_ERR_POOL_CLOSED" });
    });

    test("a pooled call that gets a RemoteError keeps its comm; a broken comm is not reused", async () => {
      let opened = 0;
      const { address } = await serve({
        handlers: {
          fail: () => {
            throw new Error("nope");
          },
          ping: () => "pong",
          drop: (_a, ctx) => {
            ctx.comm.abort();
            return NO_REPLY;
          },
        },
      });
      const pool = new ConnectionPool({ connect: async (a, o) => (opened++, connect(a, o)) });
      try {
        await assert.rejects(pool.call(address, { op: "fail" }), { code: "DASK_ERR_RPC_REMOTE" });
        assert.equal(await pool.call(address, { op: "ping" }), "pong");
        assert.equal(opened, 1);
        await assert.rejects(pool.call(address, { op: "drop" }), { code: "DASK_ERR_COMM_CLOSED" });
        assert.equal(await pool.call(address, { op: "ping" }), "pong");
        assert.equal(opened, 2);
      } finally {
        await pool.close();
      }
    });

    test("connection_stream: batches dispatched in order with context keys, OK and close-stream honoured", async () => {
      const seen: unknown[] = [];
      const closed = deferred();
      const { address } = await serve({
        streamHandlers: {
          "task-finished": (m) => void seen.push(m),
          boom: () => {
            throw new Error("stream handler failure");
          },
        },
      });
      const comm = await dial(address);
      await comm.write({ op: "connection_stream", reply: false });
      const b = new BatchedSend({ intervalMs: 0 });
      b.start(comm);
      b.send({ op: "task-finished", key: "a" });
      await comm.write([{ op: "task-finished", key: "b" }, "OK", { op: "task-finished", key: "skipped" }]);
      await comm.write({ op: "task-finished", key: "c" });
      await comm.write([{ op: "task-finished", key: "d" }, { op: "close-stream" }, { op: "task-finished", key: "after-close" }]);
      comm.read().catch(() => closed.resolve());
      await closed.promise;
      assert.deepEqual(
        seen.map((m) => (m as { key: string }).key),
        ["a", "b", "c", "d"],
      );
      b.abort();
    });

    test("a throwing stream handler ends that stream only", async () => {
      const { server, address } = await serve({
        streamHandlers: {
          boom: () => {
            throw new Error("stream handler failure");
          },
        },
        handlers: { ping: () => "pong" },
      });
      const comm = await dial(address);
      await comm.write({ op: "connection_stream", reply: false });
      await comm.write([{ op: "boom" }]);
      await assert.rejects(comm.read(), { code: "DASK_ERR_COMM_CLOSED" });
      const other = await dial(address);
      assert.equal(await sendRecv(other, { op: "ping" }), "pong");
      assert.ok(server.comms.size >= 1);
    });

    test("async stream handlers run in the background; odd (op-less) messages are skipped", async () => {
      const seen: unknown[] = [];
      const done = deferred();
      const logs: string[] = [];
      const server = new Server({
        log: (_l, m) => logs.push(m),
        streamHandlers: {
          // Never settles: must not hold up the ops behind it.
          slow: () => new Promise<void>(() => void seen.push("slow started")),
          failsLater: async () => {
            throw new Error("background failure");
          },
          fast: (m) => void seen.push(m["n"]),
          end: () => done.resolve(),
        },
      });
      servers.push(server);
      const address = await server.listen(where === "inproc://" ? "inproc://" + Math.random().toString(36).slice(2) : where);
      const comm = await dial(address);
      await comm.write({ op: "connection_stream", reply: false });
      await comm.write([{ op: "slow" }, { op: "failsLater" }, { op: "fast", n: 1 }, { n: "no op" }, { op: "fast", n: 2 }, { op: "end" }]);
      await done.promise;
      assert.deepEqual(seen, ["slow started", 1, 2]);
      assert.ok(logs.some((l) => l.includes("odd message")));
      assert.ok(logs.some((l) => l.includes("failsLater failed (background)")));
      assert.equal(comm.closed, false, "the stream survived the background failure");
    });

    test("handleStream merges extra context keys; a key in the message wins", async () => {
      const seen: unknown[] = [];
      const done = deferred();
      const server = new Server({ streamHandlers: { op1: (m) => void seen.push(m) } });
      servers.push(server);
      const address = await server.listen(where === "inproc://" ? "inproc://" + Math.random().toString(36).slice(2) : where);
      server.handlers["register"] = (_a, ctx) => {
        void server.handleStream(ctx.comm, { worker: "tcp://w:1", extra: 1 }).then(() => done.resolve());
        return NO_REPLY;
      };
      const comm = await dial(address);
      await comm.write({ op: "register", reply: false });
      await comm.write([{ op: "op1", x: 1 }, { op: "op1", worker: "mine" }, { op: "close-stream" }]);
      await done.promise;
      assert.deepEqual(seen, [
        { worker: "tcp://w:1", extra: 1, x: 1 },
        { worker: "mine", extra: 1 },
      ]);
    });
  });
}

test("connect to a closed port rejects with DASK_ERR_COMM_CONNECT", async () => {
  const s = new Server();
  const address = await s.listen("tcp://127.0.0.1:0");
  await s.close();
  await assert.rejects(connect(address, { timeoutMs: 10_000 }), { code: "DASK_ERR_COMM_CONNECT" });
  await assert.rejects(connect("inproc://nobody-here"), { code: "DASK_ERR_COMM_CONNECT" });
  await assert.rejects(connect("udp://127.0.0.1:1"), { code: "DASK_ERR_ADDRESS" });
});
