// Batching (DASK-PROTOCOL §5.2, distributed/batched.py) with a fake clock: no sleeps, time
// only moves when the test says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchedSend, BatchPlanner, splitBatch, type Timers } from "../../src/comm/batched.ts";
import type { Comm } from "../../src/comm/comm.ts";

/** A clock whose timers fire only from `advance`. */
class FakeClock implements Timers {
  t = 1000;
  #timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((x) => x.id !== handle);
  }
  get pendingTimers(): number {
    return this.#timers.length;
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const first = this.#timers[0];
      if (!first || first.at > end) break;
      this.#timers.shift();
      this.t = first.at;
      first.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets queued promise callbacks run (writes resolve in microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A comm that records writes with the fake time; `failWrites` makes them reject. */
function recordingComm(clock: FakeClock): Comm & { writes: Array<{ at: number; msg: unknown }>; failWrites: boolean } {
  const c = {
    writes: [] as Array<{ at: number; msg: unknown }>,
    failWrites: false,
    closed: false,
    localAddress: "inproc://a",
    peerAddress: "inproc://b",
    handshakeInfo: undefined,
    name: "",
    read: () => new Promise<unknown>(() => {}),
    async write(msg: unknown) {
      if (c.failWrites) throw Object.assign(new Error("reset"), { code: "DASK_ERR_COMM_CLOSED" });
      c.writes.push({ at: clock.now(), msg });
    },
    async close() {
      c.closed = true;
    },
    abort() {
      c.closed = true;
    },
  };
  return c;
}

test("planner: first batch is due at once, the next one interval after the last write", () => {
  const p = new BatchPlanner(5);
  assert.equal(p.dueAt(), null);
  p.add({ op: "a" });
  assert.ok(p.dueAt()! <= 0);
  assert.deepEqual(p.take(100), [{ op: "a" }]);
  p.add({ op: "b" }, { op: "c" });
  assert.equal(p.dueAt(), 105);
  assert.equal(p.take(104), null);
  assert.deepEqual(p.take(105), [{ op: "b" }, { op: "c" }]);
  assert.equal(p.pending, 0);
});

test("BatchedSend writes the first op at once, then at most once per interval", async () => {
  const clock = new FakeClock();
  const comm = recordingComm(clock);
  const b = new BatchedSend({ intervalMs: 5, timers: clock });
  b.start(comm);
  b.send({ op: "task-finished", key: "x" });
  await settle();
  assert.deepEqual(comm.writes, [{ at: 1000, msg: [{ op: "task-finished", key: "x" }] }]);
  // Three ops inside the interval: one batch, at last write + 5.
  b.send({ op: "a" });
  await clock.advance(1);
  b.send({ op: "b" });
  b.send({ op: "c" });
  await clock.advance(3);
  assert.equal(comm.writes.length, 1, "nothing written before the interval ends");
  await clock.advance(1);
  assert.deepEqual(comm.writes[1], { at: 1005, msg: [{ op: "a" }, { op: "b" }, { op: "c" }] });
  // After a quiet period the next op goes at once again.
  await clock.advance(50);
  b.send({ op: "d" });
  await settle();
  assert.deepEqual(comm.writes[2], { at: 1055, msg: [{ op: "d" }] });
  assert.equal(b.batchCount, 3);
  assert.equal(b.messageCount, 5);
  assert.equal(clock.pendingTimers, 0);
});

test("ops sent before start() go out once started", async () => {
  const clock = new FakeClock();
  const comm = recordingComm(clock);
  const b = new BatchedSend({ intervalMs: 2, timers: clock });
  b.send({ op: "early" });
  await settle();
  b.start(comm);
  await settle();
  assert.deepEqual(comm.writes.map((w) => w.msg), [[{ op: "early" }]]);
});

test("close flushes what is buffered without waiting for the interval, then closes the comm", async () => {
  const clock = new FakeClock();
  const comm = recordingComm(clock);
  const b = new BatchedSend({ intervalMs: 10, timers: clock });
  b.start(comm);
  b.send({ op: "first" });
  await settle();
  b.send({ op: "close-client" }, { op: "close-stream" });
  await b.close();
  assert.deepEqual(comm.writes.map((w) => w.msg), [[{ op: "first" }], [{ op: "close-client" }, { op: "close-stream" }]]);
  assert.equal(comm.closed, true);
  assert.equal(await b.ended, undefined);
  assert.throws(() => b.send({ op: "late" }), { code: "DASK_ERR_COMM_CLOSED" });
  assert.equal(clock.pendingTimers, 0);
});

test("a failed write ends the stream with its cause and aborts the comm", async () => {
  const clock = new FakeClock();
  const comm = recordingComm(clock);
  comm.failWrites = true;
  const b = new BatchedSend({ intervalMs: 5, timers: clock });
  b.start(comm);
  b.send({ op: "x" });
  const cause = (await b.ended) as { code?: string };
  assert.equal(cause.code, "DASK_ERR_COMM_CLOSED");
  assert.equal(comm.closed, true);
  assert.equal(b.closed, true);
  assert.equal(b.planner.pending, 1, "the lost op is still visible");
});

test("splitBatch: a single map is a batch, 'OK' ends the batch, close-stream ends the stream", () => {
  assert.deepEqual(splitBatch({ op: "a" }), { ops: [{ op: "a" }], closeStream: false, invalid: [] });
  assert.deepEqual(splitBatch([{ op: "a" }, "OK", { op: "b" }]), { ops: [{ op: "a" }], closeStream: false, invalid: [] });
  assert.deepEqual(splitBatch([{ op: "a" }, { op: "close-stream" }, { op: "b" }]), { ops: [{ op: "a" }], closeStream: true, invalid: [] });
  assert.deepEqual(splitBatch([]), { ops: [], closeStream: false, invalid: [] });
  assert.deepEqual(splitBatch([1, { op: "a" }]).invalid, [1]);
  const m = new Map<unknown, unknown>([["op", "close-stream"]]);
  assert.equal(splitBatch([m]).closeStream, true);
});
