// LIVE, issue 4 must-show 7: the dask-scheduler is SIGKILLed while a gather waits on a running
// task. Every pending future rejects with DASK_ERR_SCHEDULER_LOST before the configured
// reconnect timeout (it must not wait for it: the client rejects at once and only then tries to
// reconnect), RPCs reject the same way, nothing is reported as an unhandled rejection, and
// nothing hangs: each wait here has a guard that fails the test instead of hanging.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startTestCluster, type TestCluster } from "../helpers/client-cluster.ts";

const RECONNECT_TIMEOUT_MS = 10_000;
let c: TestCluster;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

before(async () => {
  process.on("unhandledRejection", onUnhandled);
  c = await startTestCluster({ workers: [{ name: "w1" }], clientOptions: { reconnectTimeoutMs: RECONNECT_TIMEOUT_MS } });
});
after(async () => {
  process.off("unhandledRejection", onUnhandled);
  await c?.stop();
});

/** `p`, or a failure naming `what` once `ms` passed (the anti-hang guard). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

const lost = (e: unknown): boolean => {
  assert.equal((e as { code?: string }).code, "DASK_ERR_SCHEDULER_LOST", String(e));
  return true;
};

test("killing the scheduler mid-gather rejects every pending future with DASK_ERR_SCHEDULER_LOST", async () => {
  const { client } = c;
  assert.equal(await client.submit("tasks.js#inc", 1).result(), 2);
  // A task that blocks its worker thread for a minute, and one that depends on it.
  const slow = client.submitWith("tasks.js#stamp", [60_000], { pure: false });
  const dependent = client.submit("tasks.js#echo", slow);
  const gathering = client.gather([slow, dependent]);
  // Mid-gather for real: wait until the worker is running the slow task (one /metrics GET per round).
  const w = c.workers[0]!;
  const deadline = Date.now() + 60_000;
  while ((await w.metric("dask_wasm_tasks_executing")) < 1) {
    if (Date.now() > deadline) assert.fail(`the slow task never started:\n${w.log()}`);
  }
  assert.equal(slow.status, "pending");

  c.scheduler.proc.kill("SIGKILL");
  await within(assert.rejects(gathering, lost), RECONNECT_TIMEOUT_MS, "gather after the scheduler died");
  await within(assert.rejects(slow.result(), lost), RECONNECT_TIMEOUT_MS, "slow.result()");
  await within(assert.rejects(dependent.result(), lost), RECONNECT_TIMEOUT_MS, "dependent.result()");
  await within(assert.rejects(client.whoHas(), (e: unknown) => /DASK_ERR_(SCHEDULER_LOST|CLIENT_CLOSED)/.test(String((e as { code?: string }).code))), RECONNECT_TIMEOUT_MS, "whoHas()");
  assert.equal(slow.status, "cancelled");
  assert.equal(dependent.status, "cancelled");
  // Give rejections one full turn of the event loop to be reported if nobody handled them.
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
});
