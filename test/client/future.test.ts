// Future handle and the client's pure helpers (wireFunction, replaceFutures), without a scheduler.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Future, TaskError, type FutureHost } from "../../src/client/future.ts";
import { replaceFutures, wireFunction } from "../../src/client/client.ts";
import { taskKey } from "../../src/tokens.ts";
import { isTuple, tuple, type Key } from "../../src/protocol/values.ts";
import type { FutureStatus } from "../../src/client/state.ts";
import { DaskError } from "../../src/errors.ts";

/** A host that records calls; statuses are set by the test. */
class FakeHost implements FutureHost {
  statuses = new Map<Key, FutureStatus>();
  released: Future[] = [];
  cancelled: Key[][] = [];
  futureStatus(key: Key): FutureStatus {
    return this.statuses.get(key) ?? "pending";
  }
  async waitKey(key: Key): Promise<FutureStatus> {
    return this.futureStatus(key);
  }
  async resultOf(key: Key): Promise<unknown> {
    if (this.futureStatus(key) === "error") throw new TaskError(key, "builtins.ValueError: no");
    return `value of ${String(key)}`;
  }
  async exceptionOf(key: Key): Promise<Error | undefined> {
    return this.futureStatus(key) === "error" ? new TaskError(key, "builtins.ValueError: no") : undefined;
  }
  async cancelKeys(keys: Key[]): Promise<void> {
    this.cancelled.push(keys);
  }
  releaseHandle(future: Future): void {
    this.released.push(future);
  }
}

test("done() follows the host's status; lost is not done", () => {
  const host = new FakeHost();
  const f = new Future("k", host);
  const seen: Array<[FutureStatus, boolean]> = [];
  for (const s of ["pending", "lost", "finished", "error", "cancelled"] as FutureStatus[]) {
    host.statuses.set("k", s);
    seen.push([f.status, f.done()]);
  }
  assert.deepEqual(seen, [["pending", false], ["lost", false], ["finished", true], ["error", true], ["cancelled", true]]);
});

test("release() is idempotent, tells the host once, and makes result()/exception() reject", async () => {
  const host = new FakeHost();
  const f = new Future("k", host);
  assert.equal(await f.result(), "value of k");
  f.release();
  f.release();
  assert.deepEqual(host.released, [f]);
  assert.equal(f.status, "cancelled");
  assert.ok(f.released);
  await assert.rejects(f.result(), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_FUTURE_RELEASED");
  await assert.rejects(f.exception(), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_FUTURE_RELEASED");
});

test("TaskError carries code, key and the remote text; cancel() goes to the host", async () => {
  const host = new FakeHost();
  host.statuses.set("bad", "error");
  const f = new Future("bad", host);
  const e = await f.result().then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof TaskError && e instanceof DaskError);
  assert.equal(e.code, "DASK_ERR_TASK_FAILED");
  assert.equal(e.key, "bad");
  assert.match(e.message, /bad.*ValueError: no/);
  assert.ok((await f.exception()) instanceof TaskError);
  await f.cancel();
  assert.deepEqual(host.cancelled, [["bad"]]);
});

test("wireFunction tags a module reference once; refuses an empty one", () => {
  assert.equal(wireFunction("tasks.js#inc"), "dask-wasm:js:tasks.js#inc");
  assert.equal(wireFunction("dask-wasm:wasm:add"), "dask-wasm:wasm:add");
  assert.throws(() => wireFunction(""), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_CONFIG");
});

test("replaceFutures: futures anywhere in arrays, tuples and plain objects become keys and dependencies", () => {
  const host = new FakeHost();
  const a = new Future("a-1", host);
  const b = new Future("b-2", host);
  const deps = new Set<string>();
  const out = replaceFutures([a, tuple<unknown>(1, b), { x: [a], y: "a-1-not-a-future", z: new Uint8Array([1]) }], deps) as unknown[];
  assert.deepEqual(out, ["a-1", [1, "b-2"], { x: ["a-1"], y: "a-1-not-a-future", z: new Uint8Array([1]) }]);
  assert.ok(isTuple(out[1]), "a tuple stays a tuple");
  assert.deepEqual([...deps].sort(), ["a-1", "b-2"]);
});

test("a Future tokenizes by its key: same key -> same task key, different key -> different", () => {
  const host = new FakeHost();
  const k1 = taskKey("tasks.js#inc", [new Future("x-1", host)]);
  assert.equal(taskKey("tasks.js#inc", [new Future("x-1", host)]), k1);
  assert.notEqual(taskKey("tasks.js#inc", [new Future("x-2", host)]), k1);
  assert.notEqual(taskKey("tasks.js#inc", ["x-1"]), k1, "a future is not the same as its key string");
});
