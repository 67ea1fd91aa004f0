// The client's dialect choice and 2026 wire path, end to end over TCP (127.0.0.1) against a
// scripted fake 2026 scheduler (it answers `versions` with distributed 2026.7.1 and records the
// stream), and the 2022 choice against Debian's real dask 2022.12 scheduler.
//
// The fake keeps expr_ser opaque (deserialize: false), as the real scheduler's comm does, and the
// pickle is compared with writeGraphPickle of the graph built here by hand from TaskNodes, so
// what is checked is the client's lowering (futures -> TaskRef, nested -> List/Dict), not the writer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../../src/client/client.ts";
import { listen } from "../../src/comm/registry.ts";
import type { Comm } from "../../src/comm/comm.ts";
import { serializeCodec } from "../../src/comm/wire.ts";
import { getField } from "../../src/comm/rpc.ts";
import { writeGraphPickle } from "../../src/protocol/pickle-writer.ts";
import { Serialized } from "../../src/protocol/serialize.ts";
import { ContainerNode, TaskNode, TaskRefNode } from "../../src/protocol/task-spec.ts";
import { startScheduler } from "../helpers/dask.ts";

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
type Op = Record<string, unknown>;

/** A scheduler that speaks just enough 2026 for one client; `ops` waits for the stream's ops. */
async function fake2026() {
  const seen: Op[] = [];
  const waiters: Array<() => void> = [];
  let stream: Comm | undefined;
  const comms: Comm[] = [];
  const listener = await listen("tcp://127.0.0.1:0", async (comm) => {
    comms.push(comm);
    for (;;) {
      let msg: unknown;
      try {
        msg = await comm.read();
      } catch {
        return;
      }
      const op = getField(msg, "op");
      if (op === "versions") await comm.write({ host: {}, packages: { python: "3.11.2", dask: "2026.7.1", distributed: "2026.7.1" } });
      else if (op === "register-client") {
        stream = comm;
        await comm.write([{ op: "stream-start", warning: "", error: "" }]);
      } else if (Array.isArray(msg)) {
        for (const m of msg) seen.push(m as Op);
        for (const w of waiters.splice(0)) w();
      } else await comm.write({ status: "error", message: `fake: no ${String(op)}` });
    }
  }, { codec: serializeCodec({ deserialize: false }) });
  const ops = async (n: number, name: string): Promise<Op[]> => {
    for (;;) {
      const got = seen.filter((m) => m["op"] === name);
      if (got.length >= n) return got;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const send = (ops: Op[]): Promise<void> => stream!.write(ops);
  const close = async (): Promise<void> => {
    await listener.close();
    for (const c of comms) c.abort();
  };
  return { address: listener.address, ops, send, close };
}

/** The uuid hex token the client drew: the pickle ends SHORT_BINUNICODE <32> EMPTY_DICT TUPLE REDUCE STOP. */
function tokenOf(pickle: Uint8Array): string {
  const end = pickle.length - 4;
  assert.equal(hexOf(pickle.subarray(end - 34, end - 32)), "8c20");
  return Buffer.from(pickle.subarray(end - 32, end)).toString("latin1");
}

test("2026 scheduler: update-graph with a pickled LLGExpr, cancel-keys out, cancelled-keys in", { timeout: 60_000 }, async () => {
  const sched = await fake2026();
  const client = await Client.connect(sched.address);
  try {
    assert.equal(client.dialect, "2026");
    const a = client.submit("tasks.js#inc", 1);
    const b = client.submitWith("tasks.js#combine", [a, [a, 2], { x: a, y: [3] }], { kwargs: { scale: 2 } });
    const [g1, g2] = await sched.ops(2, "update-graph");
    for (const g of [g1!, g2!]) {
      for (const field of ["expr_ser", "keys", "internal_priority", "submitting_task", "span_metadata"]) assert.ok(field in g, field);
      assert.equal(getField(g, "tasks"), undefined);
      assert.deepEqual(g["annotations"], { resources: { wasm: 1 } });
    }
    assert.deepEqual(g2!["keys"], [b.key]);
    const ser = g2!["expr_ser"];
    assert.ok(ser instanceof Serialized);
    assert.deepEqual([ser.header["serializer"], ser.header["writeable"]], ["pickle", []]);
    const pickle = ser.frames[0]!;
    const ref = new TaskRefNode(a.key);
    const expected = new Map([[b.key, new TaskNode(b.key, "dask-wasm:js:tasks.js#combine", [
      ref, new ContainerNode("list", [ref, 2]), new ContainerNode("dict", ["x", ref, "y", [3]]),
    ], new Map([["scale", 2]]))]]);
    assert.equal(hexOf(pickle), hexOf(writeGraphPickle(expected, tokenOf(pickle))));

    await client.cancel(b);
    const [cancel] = await sched.ops(1, "cancel-keys");
    assert.deepEqual(cancel, { op: "cancel-keys", keys: [b.key], force: false, reason: "cancelled by client", msg: null });
    // The scheduler's 2026 batched form reaches a future the client did not cancel itself.
    await sched.send([{ op: "cancelled-keys", keys: [a.key], reason: "lost dependencies" }]);
    assert.equal(await client.waitKey(a.key), "cancelled");
  } finally {
    await client.close();
    await sched.close();
  }
});

test("2022 scheduler (Debian dask 2022.12): the versions RPC selects the 2022 dialect", async () => {
  const sched = await startScheduler();
  try {
    const client = await Client.connect(sched.address);
    try {
      assert.equal(client.dialect, "2022");
    } finally {
      await client.close();
    }
  } finally {
    await sched.stop();
  }
});
