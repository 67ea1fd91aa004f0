// LIVE, issue 4 must-show 5: identical nodes share one token-derived key and run once. The
// task (mustshow.js#counted) appends a line to a file the test names on every execution, so
// the count is of real executions on the dask-wasm worker, not of futures or messages.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { delayed, compute } from "../../../src/client/graph.ts";
import { startTestCluster, type TestCluster } from "../../helpers/client-cluster.ts";
import { flavors } from "../../helpers/dask.ts";

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let c: TestCluster;
    before(async () => {
      c = await startTestCluster({ workers: [{ name: "w1" }, { name: "w2" }], flavor });
    });
    after(() => c?.stop());

    test("submitting the same task twice yields one key and one execution", async () => {
      const path = c.tempFile("submit-count");
      const f1 = c.client.submit("mustshow.js#counted", path, 41);
      const f2 = c.client.submit("mustshow.js#counted", path, 41);
      assert.equal(f1.key, f2.key);
      assert.deepEqual(await c.client.gather([f1, f2]), [42, 42]);
      // Submitting it again after it finished still does not rerun it.
      const f3 = c.client.submit("mustshow.js#counted", path, 41);
      assert.equal(await f3.result(), 42);
      assert.equal(c.lines(path), 1);
      // A different argument is a different key and a second execution: the counter can count.
      const g = c.client.submit("mustshow.js#counted", path, 1);
      assert.notEqual(g.key, f1.key);
      assert.equal(await g.result(), 2);
      assert.equal(c.lines(path), 2);
      // pure: false opts out: a fresh key, a real rerun.
      const impure = c.client.submitWith("mustshow.js#counted", [path, 41], { pure: false });
      assert.notEqual(impure.key, f1.key);
      assert.equal(await impure.result(), 42);
      assert.equal(c.lines(path), 3);
    });

    test("identical delayed nodes in one graph share a key and run once", async () => {
      const path = c.tempFile("delayed-count");
      const counted = delayed("mustshow.js#counted");
      const a1 = counted(path, 5);
      const a2 = counted(path, 5);
      assert.equal(a1.key, a2.key);
      const add = delayed("tasks.js#add");
      const [sum, again] = await compute(add(a1, a2), a2, { scheduler: c.client });
      assert.equal(sum, 12);
      assert.equal(again, 6);
      assert.equal(c.lines(path), 1);
    });
  });
}
