// ClientState (pure): refcounts, scheduler stream ops -> resolutions, release ops. No IO.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ClientState, exceptionTextOf } from "../../src/client/state.ts";
import { serialize } from "../../src/protocol/serialize.ts";
import { Serialized } from "../../src/protocol/serialize.ts";
import { exceptionPickle } from "../../src/worker/error-pickle.ts";

const CLIENT = "Client-test";

/** The pickle a dask-wasm worker sends in task-erred for a JS error (§10.2). */
function builtinsPickle(typeName: string, message: string): Uint8Array {
  return exceptionPickle({ typeName, message, stack: "" });
}

test("acquire counts handles; only the last release sends client-releases-keys", () => {
  const s = new ClientState(CLIENT);
  assert.equal(s.acquire("inc-1"), true);
  assert.equal(s.acquire("inc-1"), false);
  assert.equal(s.get("inc-1")!.refs, 2);
  assert.deepEqual(s.release("inc-1"), []);
  assert.deepEqual(s.release("inc-1"), [{ op: "client-releases-keys", keys: ["inc-1"], client: CLIENT }]);
  assert.equal(s.get("inc-1"), undefined);
  assert.deepEqual(s.release("inc-1"), [], "a second release of a forgotten key sends nothing");
});

test("key-in-memory, task-erred, lost-data, task-retried move one key and resolve it", () => {
  const s = new ClientState(CLIENT);
  s.acquire("a");
  s.acquire("b");
  assert.deepEqual(s.handle({ op: "key-in-memory", key: "a", type: new Uint8Array(1) }), [{ id: "a", status: "finished" }]);
  assert.equal(s.get("b")!.status, "pending", "only the named key moves");
  assert.deepEqual(s.handle({ op: "lost-data", key: "a" }), [{ id: "a", status: "lost" }]);
  assert.deepEqual(s.handle(new Map<unknown, unknown>([["op", "task-erred"], ["key", "b"], ["exception", builtinsPickle("TypeError", "bad b")], ["traceback", null]])), [{ id: "b", status: "error" }]);
  assert.match(s.get("b")!.exceptionText!, /^builtins\.TypeError: .*bad b/);
  assert.deepEqual(s.handle({ op: "task-retried", key: "b" }), [{ id: "b", status: "pending" }]);
  assert.equal(s.get("b")!.exceptionText, undefined);
});

test("ops for unknown keys, unknown ops and malformed ops change nothing", () => {
  const s = new ClientState(CLIENT);
  s.acquire("a");
  for (const op of [{ op: "key-in-memory", key: "zzz" }, { op: "pubsub-msg", key: "a" }, { op: "key-in-memory" }, { op: "key-in-memory", key: { x: 1 } }, "OK", null, 42]) {
    assert.deepEqual(s.handle(op), []);
  }
  assert.equal(s.get("a")!.status, "pending");
});

test("cancelled is final: a late key-in-memory does not revive it; resubmit does", () => {
  const s = new ClientState(CLIENT);
  s.acquire("a");
  assert.deepEqual(s.markCancelled(["a"], "cancelled"), [{ id: "a", status: "cancelled" }]);
  assert.deepEqual(s.handle({ op: "key-in-memory", key: "a" }), []);
  assert.equal(s.get("a")!.status, "cancelled");
  assert.deepEqual(s.resubmit("a"), [{ id: "a", status: "pending" }]);
  assert.deepEqual(s.handle({ op: "key-in-memory", key: "a" }), [{ id: "a", status: "finished" }]);
  assert.deepEqual(s.resubmit("a"), [], "a finished key is not resubmitted");
});

test("restart and a lost scheduler cancel every key with their reason; releasing them sends nothing", () => {
  const s = new ClientState(CLIENT);
  for (const k of ["a", "b", "c"]) s.acquire(k);
  s.handle({ op: "key-in-memory", key: "a" });
  assert.deepEqual(s.handle({ op: "restart" }).map((r) => r.id).sort(), ["a", "b", "c"]);
  assert.equal(s.get("b")!.reason, "restart");
  assert.deepEqual(s.release("b"), [], "the restarted scheduler already forgot b");
  const t = new ClientState(CLIENT);
  t.acquire("x");
  t.cancelAll("scheduler-lost");
  assert.equal(t.get("x")!.reason, "scheduler-lost");
  assert.deepEqual(t.release("x"), []);
  // A user cancel still tells the scheduler when released (it may not have forgotten yet).
  const u = new ClientState(CLIENT);
  u.acquire("y");
  u.markCancelled(["y"], "cancelled");
  assert.equal(u.release("y").length, 1);
});

test("exceptionTextOf: pickle bytes, Serialized dask bytes (Python worker), str, junk", () => {
  const pickle = builtinsPickle("RangeError", "out of range 7");
  const text = exceptionTextOf(pickle);
  assert.match(text, /^builtins\.\w+Error: .*out of range 7/);
  const { header, frames } = serialize(pickle);
  assert.equal(exceptionTextOf(new Serialized(header, frames)), text);
  assert.equal(exceptionTextOf("ValueError: plain"), "ValueError: plain");
  assert.equal(exceptionTextOf(new TextEncoder().encode("not a pickle")), "not a pickle");
  assert.equal(exceptionTextOf(null), "");
});

test("property: refs equal acquires minus releases; exactly one release op per key, at zero", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.boolean()), { maxLength: 60 }), (steps) => {
      const s = new ClientState(CLIENT);
      const model = new Map<string, number>();
      const releaseOps: string[] = [];
      for (const [k, acquire] of steps) {
        if (acquire) {
          s.acquire(k);
          model.set(k, (model.get(k) ?? 0) + 1);
        } else {
          const ops = s.release(k);
          const n = model.get(k) ?? 0;
          if (n === 1) {
            assert.deepEqual(ops, [{ op: "client-releases-keys", keys: [k], client: CLIENT }]);
            releaseOps.push(k);
          } else assert.deepEqual(ops, []);
          if (n <= 1) model.delete(k);
          else model.set(k, n - 1);
        }
        for (const key of ["a", "b", "c"]) assert.equal(s.get(key)?.refs, model.get(key));
      }
      assert.equal(s.size, model.size);
    }),
  );
});
