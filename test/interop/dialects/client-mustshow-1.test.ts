// LIVE, issue 4 must-show 1: the classic example `a = 1 + 2; x = a + 3; y = a + 1; x * y`
// gives 24 through `delayed` + compute on a Client (each flavor's dask-scheduler, two dask-wasm
// workers), through `submit` with futures as arguments, and through each single-machine
// scheduler (sync, threads, processes) on the very same delayed graph. The expected value is
// computed here in plain JS from the same inputs, never copied from a run.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { delayed, compute } from "../../../src/client/graph.ts";
import { startTestCluster, MUSTSHOW_JS, type TestCluster } from "../../helpers/client-cluster.ts";
import { TASKS_JS } from "../../helpers/wasm-worker.ts";
import { flavors } from "../../helpers/dask.ts";

const A = 1 + 2;
const EXPECTED = (A + 3) * (A + 1);

/** The example as a delayed graph over registered functions. */
function classic() {
  const add = delayed("tasks.js#add");
  const mul = delayed("mustshow.js#mul");
  const a = add(1, 2);
  const x = add(a, 3);
  const y = add(a, 1);
  return { a, x, y, result: mul(x, y) };
}

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let c: TestCluster;
    before(async () => {
      c = await startTestCluster({ workers: [{ name: "w1" }, { name: "w2" }], flavor });
    });
    after(() => c?.stop());

    test("delayed + compute on the Client gives 24", async () => {
      const g = classic();
      const [v, a] = await compute(g.result, g.a, { scheduler: c.client });
      assert.equal(v, EXPECTED);
      assert.equal(a, A);
    });

    test("submit with futures as arguments gives 24", async () => {
      const a = c.client.submit("tasks.js#add", 1, 2);
      const x = c.client.submit("tasks.js#add", a, 3);
      const y = c.client.submit("tasks.js#add", a, 1);
      const r = c.client.submit("mustshow.js#mul", x, y);
      assert.equal(await r.result(), EXPECTED);
      assert.deepEqual(await c.client.gather([a, x, y]), [A, A + 3, A + 1]);
      assert.equal(r.status, "finished");
      for (const f of [a, x, y, r]) f.release();
    });
  });
}

// The single-machine schedulers involve no dask process: run once, not per flavor.
for (const scheduler of ["sync", "threads", "processes"] as const) {
  test(`the same graph on the ${scheduler} scheduler gives 24 (no dask-scheduler involved)`, async () => {
    const g = classic();
    const [v] = await compute(g.result, { scheduler, modules: [TASKS_JS, MUSTSHOW_JS], numWorkers: 2 });
    assert.equal(v, EXPECTED);
  });
}
