// LIVE, issue 4 must-show 6: `retries: 2` makes a task that fails twice then succeeds return its
// value (attempts counted in a file by the task itself, mustshow.js#flaky), fewer retries give
// the task's own error with its key; `workers: [addr]` and `resources` decide where tasks run,
// which each task reports (the worker name it ran under).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { TaskError } from "../../../src/client/client.ts";
import { startTestCluster, type TestCluster } from "../../helpers/client-cluster.ts";
import { flavors } from "../../helpers/dask.ts";

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let c: TestCluster;
    before(async () => {
      c = await startTestCluster({
        workers: [{ name: "w1" }, { name: "w2" }, { name: "gpu", resources: { wasm: 1, GPU: 1 } }],
        flavor,
      });
    });
    after(() => c?.stop());

    test("retries: 2 lets a task that fails twice return its value", async () => {
      const path = c.tempFile("flaky-ok");
      const f = c.client.submitWith("mustshow.js#flaky", [path, 2, "third time"], { retries: 2 });
      const got = (await f.result()) as { value: string; attempts: number };
      assert.equal(got.value, "third time");
      assert.equal(got.attempts, 3);
      assert.equal(c.lines(path), 3);
      assert.equal(f.status, "finished");
    });

    test("retries: 1 is not enough: the task's error, with its key, after two attempts", async () => {
      const path = c.tempFile("flaky-fail");
      const f = c.client.submitWith("mustshow.js#flaky", [path, 2, "never"], { retries: 1 });
      await assert.rejects(f.result(), (e: unknown) => {
        assert.ok(e instanceof TaskError, String(e));
        assert.equal(e.code, "DASK_ERR_TASK_FAILED");
        assert.equal(e.key, f.key);
        assert.match(e.remoteText, /flaky: attempt 2 of 2 planned failures/);
        return true;
      });
      assert.equal(c.lines(path), 2);
      assert.equal(f.status, "error");
    });

    test("workers: [addr] pins each task to that worker", async () => {
      for (const w of c.workers) {
        // pure: false, so each submission is a new task (not the previous key again).
        const fs = [0, 1, 2].map((i) => c.client.submitWith("mustshow.js#where", [i], { workers: [w.address], pure: false }));
        const got = (await c.client.gather(fs)) as Array<{ value: number; worker: string }>;
        const name = w.address === c.workers[2]!.address ? "gpu" : `w${c.workers.indexOf(w) + 1}`;
        assert.deepEqual(got, [0, 1, 2].map((i) => ({ value: i, worker: name })));
        const held = await c.client.whoHas(fs);
        for (const f of fs) assert.deepEqual(held[f.key as string], [w.address]);
      }
    });

    test("resources: {GPU: 1} runs only on the worker that has a GPU", async () => {
      const fs = Array.from({ length: 6 }, (_, i) => c.client.submitWith("mustshow.js#where", [i], { resources: { GPU: 1 }, pure: false }));
      const got = (await c.client.gather(fs)) as Array<{ value: number; worker: string }>;
      assert.deepEqual(got.map((g) => g.worker), Array(6).fill("gpu"));
      assert.deepEqual(got.map((g) => g.value), [0, 1, 2, 3, 4, 5]);
      // And a resource no worker has leaves the task waiting (never running elsewhere).
      const nowhere = c.client.submitWith("mustshow.js#where", [99], { resources: { TPU: 1 }, pure: false });
      const marker = c.client.submitWith("mustshow.js#where", [98], { pure: false });
      await marker.result();
      assert.equal(nowhere.status, "pending");
      await nowhere.cancel();
    });
  });
}
