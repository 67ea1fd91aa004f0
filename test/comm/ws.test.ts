// dask's `ws://` comm (src/comm/ws.ts): the framing alone (count message, frames reassembled,
// coded refusals), a comm over a scripted WebSocket (text message -> coded close), and LIVE
// against Debian's `dask-scheduler --protocol ws`: connect + identity through the registry's
// "ws" backend (Node's global WebSocket, undici), then a full Node dask-wasm Worker registered
// over ws:// running a Python client's dask_wasm.js task (the client connects with ws:// too).
//
// The scheduler gets `--port P --dashboard-address 127.0.0.1:P` with one free port P: only then
// does its ws listener bind 127.0.0.1 alone (DASK-PROTOCOL §11: otherwise it ignores --host and
// binds every interface). P comes from binding port 0 and releasing it.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { connect, listen } from "../../src/comm/registry.ts";
import { sendRecv } from "../../src/comm/rpc.ts";
import { commFromWebSocket, wsFraming, type WebSocketLike } from "../../src/comm/ws.ts";
import { encodeWsMessages } from "../../src/protocol/frames.ts";
import { encode } from "../../src/protocol/msgpack.ts";
import { DaskError, ProtocolError } from "../../src/errors.ts";
import { Worker } from "../../src/worker/worker.ts";
import { startPython, runPythonClient, stopAll, type DaskProcess } from "../helpers/dask.ts";
import { errorCode, REPO } from "../helpers/env.ts";

const u64 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};

describe("wsFraming", () => {
  test("a count message then one message per frame gives the frames back, message after message", () => {
    const r = wsFraming().createReader();
    const a = Uint8Array.of(1, 2, 3);
    const b = new Uint8Array(0);
    const c = Uint8Array.of(9);
    r.push(u64(2));
    assert.equal(r.next(), null);
    r.push(a);
    assert.equal(r.next(), null, "one of two frames is not a message");
    r.push(b);
    r.push(u64(1));
    r.push(c);
    assert.deepEqual(r.next()?.map((f) => [...f]), [[1, 2, 3], []]);
    assert.deepEqual(r.next()?.map((f) => [...f]), [[9]]);
    assert.equal(r.next(), null);
    r.push(u64(0));
    assert.deepEqual(r.next(), [], "a zero-frame message");
  });

  test("pack = encodeWsMessages: the u64 LE count, then each frame as its own message", () => {
    const frames = [Uint8Array.of(7), Uint8Array.of(8, 9)];
    const packed = wsFraming().pack(frames);
    assert.deepEqual(packed.map((m) => [...m]), [[2, 0, 0, 0, 0, 0, 0, 0], [7], [8, 9]]);
    assert.deepEqual(packed, encodeWsMessages(frames));
    // and the reader takes back exactly what pack wrote
    const r = wsFraming().createReader();
    for (const m of packed) r.push(m);
    assert.deepEqual(r.next(), frames);
  });

  test("a count message that is not 8 bytes is DASK_ERR_FRAME_WS_COUNT, and the reader stays dead", () => {
    for (const bad of [new Uint8Array(0), Uint8Array.of(1, 0, 0), new Uint8Array(9)]) {
      const r = wsFraming().createReader();
      assert.equal(errorCode(() => r.push(bad), ProtocolError), "DASK_ERR_FRAME_WS_COUNT", `${bad.length} bytes`);
      assert.equal(errorCode(() => r.push(u64(1)), ProtocolError), "DASK_ERR_FRAME_WS_COUNT", "dead after the error");
    }
  });

  test("limits: more frames than maxFrames, a frame above maxFrameBytes -> coded", () => {
    const r = wsFraming({ maxFrames: 4 }).createReader();
    assert.equal(errorCode(() => r.push(u64(5)), ProtocolError), "DASK_ERR_TOO_MANY_FRAMES");
    const s = wsFraming({ maxFrameBytes: 4 }).createReader();
    s.push(u64(1));
    assert.equal(errorCode(() => s.push(new Uint8Array(5)), ProtocolError), "DASK_ERR_FRAME_TOO_LARGE");
  });
});

/** A WebSocketLike the test drives: open already, records what is sent. */
class ScriptedSocket implements WebSocketLike {
  binaryType = "arraybuffer";
  readyState = 1;
  sent: Uint8Array[] = [];
  closed: number | undefined;
  #listeners = new Map<string, Array<(e: { data?: unknown; code?: number; message?: string }) => void>>();
  addEventListener(type: string, l: (e: { data?: unknown }) => void): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), l]);
  }
  send(data: Uint8Array | ArrayBuffer): void {
    this.sent.push(new Uint8Array(data instanceof ArrayBuffer ? data : data.slice()));
  }
  close(code?: number): void {
    this.closed = code;
    this.readyState = 3;
  }
  fire(type: string, e: { data?: unknown; code?: number; message?: string } = {}): void {
    for (const l of this.#listeners.get(type) ?? []) l(e);
  }
}

describe("commFromWebSocket", () => {
  test("a message arriving as count + frame (ArrayBuffer and typed-array views) is read whole; a write is count + frames", async () => {
    const ws = new ScriptedSocket();
    const comm = commFromWebSocket(ws, "ws://peer:1");
    const [count, frame] = encodeWsMessages([encode({ op: "identity", reply: true })]);
    ws.fire("message", { data: count!.slice().buffer });
    ws.fire("message", { data: Buffer.from(frame!) });
    assert.deepEqual(await comm.read(), { op: "identity", reply: true });
    await comm.write({ status: "OK" });
    assert.equal(ws.sent.length, 2);
    assert.deepEqual([...ws.sent[0]!], [...u64(1)]);
    assert.deepEqual(ws.sent[1], encode({ status: "OK" }));
  });

  test("a text message closes the comm with a coded ProtocolError (ws.py accepts binary only)", async () => {
    const ws = new ScriptedSocket();
    const comm = commFromWebSocket(ws, "ws://peer:1");
    const reading = comm.read();
    ws.fire("message", { data: "hello" });
    const e = await reading.then(() => null, (x: unknown) => x);
    assert.ok(e instanceof ProtocolError, String(e));
    assert.equal(e.code, "DASK_ERR_FRAME_WS_COUNT");
    assert.ok(comm.closed);
    assert.equal(ws.closed, 1000, "the socket was closed");
  });

  test("the socket closing ends the comm: reads reject DASK_ERR_COMM_CLOSED, writes refuse", async () => {
    const ws = new ScriptedSocket();
    const comm = commFromWebSocket(ws, "ws://peer:1");
    const reading = comm.read();
    ws.readyState = 3;
    ws.fire("close", { code: 1006 });
    const e = await reading.then(() => null, (x: unknown) => x);
    assert.ok(e instanceof DaskError && e.code === "DASK_ERR_COMM_CLOSED", String(e));
    await assert.rejects(comm.write({ op: "x" }), DaskError);
  });
});

/** A port free right now on 127.0.0.1 (bound to 0, read, released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test("connect('ws://…') where nothing listens rejects with DASK_ERR_COMM_CONNECT; listening on ws:// is a coded refusal", async () => {
  const port = await freePort();
  const e = await connect(`ws://127.0.0.1:${port}`).then(() => null, (x: unknown) => x);
  assert.ok(e instanceof DaskError, String(e));
  assert.equal(e.code, "DASK_ERR_COMM_CONNECT");
  const l = await listen("ws://127.0.0.1:0", () => {}).then(() => null, (x: unknown) => x);
  assert.ok(l instanceof DaskError && l.code === "DASK_ERR_ADDRESS", String(l));
});

describe("live: dask-scheduler --protocol ws", () => {
  let scheduler: DaskProcess;
  let address: string;
  const workers: Worker[] = [];

  before(async () => {
    const port = await freePort();
    scheduler = await startPython(
      "import runpy, sys\nsys.argv = ['dask-scheduler'] + sys.argv[1:]\nrunpy.run_module('distributed.cli.dask_scheduler', run_name='__main__')",
      ["--protocol", "ws", "--host", "127.0.0.1", "--port", String(port), "--dashboard-address", `127.0.0.1:${port}`],
      { ready: /Scheduler at:\s+ws:\/\/127\.0\.0\.1:\d+/ },
    );
    address = scheduler.log().match(/Scheduler at:\s+(ws:\/\/127\.0\.0\.1:\d+)/)![1]!;
    assert.equal(address, `ws://127.0.0.1:${port}`);
  });

  after(async () => {
    for (const w of workers) await w.close("test-done").catch(() => {});
    await stopAll();
  });

  test("connect('ws://…') through the registry: handshake, then identity from the real scheduler", async () => {
    const comm = await connect(address);
    try {
      assert.ok(comm.handshakeInfo, "handshake done");
      assert.equal(comm.handshakeInfo.remote["pickle-protocol"], 5);
      const id = (await sendRecv(comm, { op: "identity" })) as Record<string, unknown>;
      assert.equal(id["type"], "Scheduler");
      assert.equal(id["address"], address);
    } finally {
      await comm.close();
    }
  });

  test("a 24 MiB echo over ws:// comes back whole (one WS message per frame, both ways)", async () => {
    const comm = await connect(address);
    try {
      const data = new Uint8Array(24 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 0xff;
      const back = (await sendRecv(comm, { op: "echo", data })) as Uint8Array;
      assert.equal(back.length, data.length);
      assert.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(data), "same bytes");
    } finally {
      await comm.close();
    }
  });

  test("a Node Worker registered over ws:// (listening on tcp) runs a Python client's dask_wasm.js tasks", async () => {
    const worker = new Worker({ scheduler: address, name: "ws-node", modules: [REPO + "examples/tasks.js"], listenAddress: "tcp://127.0.0.1:0" });
    workers.push(worker);
    await worker.start();
    assert.match(worker.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const xs = [0, 1, 2, 40, -7];
    const out = await runPythonClient(
      address,
      [
        `sys.path.insert(0, ${JSON.stringify(REPO + "python")})`,
        "import json, dask_wasm",
        "inc = dask_wasm.js('tasks.js#inc')",
        `xs = ${JSON.stringify(xs)}`,
        "futs = client.map(inc, xs, resources={'wasm': 1})",
        "vals = client.gather(futs)",
        "who = client.who_has(futs)",
        "print('RESULT ' + json.dumps({'vals': vals, 'who': sorted({w for ws in who.values() for w in ws}), 'workers': sorted(client.scheduler_info()['workers'])}))",
      ].join("\n"),
    );
    const result = JSON.parse(out.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7)) as { vals: number[]; who: string[]; workers: string[] };
    assert.deepEqual(result.vals, xs.map((x) => x + 1));
    assert.deepEqual(result.who, [worker.address], "every task ran on the ws-registered Node worker");
    assert.ok(result.workers.includes(worker.address));
    await worker.close("test-done");
  });
});
