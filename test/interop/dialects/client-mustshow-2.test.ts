// LIVE, issue 4 must-show 2: computation moves to the data. An input pinned to one dask-wasm
// worker is consumed by an unpinned dependent task, which the real dask-scheduler places on the
// worker already holding that input: checked with whoHas AND with the worker name the task
// itself records (mustshow.js#where). Done for each worker in turn, so a scheduler that always
// picked the same worker would fail. Then `replicate` leaves the data on every worker.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
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

    test("a dependent task runs on the worker holding its input (each worker in turn)", async () => {
      for (const [i, w] of c.workers.entries()) {
        const input = c.client.submitWith("tasks.js#inc", [100 + i], { workers: [w.address] });
        await input.result();
        assert.deepEqual(await c.client.whoHas(input), { [input.key as string]: [w.address] });
        // No restriction on the dependent: only data locality sends it to `w`.
        const dep = c.client.submit("mustshow.js#where", input);
        const got = (await dep.result()) as { value: number; worker: string };
        assert.deepEqual(got, { value: 100 + i + 1, worker: `w${i + 1}` });
        assert.deepEqual(await c.client.whoHas(dep), { [dep.key as string]: [w.address] });
        // The input did not move: no other worker fetched it.
        assert.deepEqual(await c.client.whoHas(input), { [input.key as string]: [w.address] });
        input.release();
        dep.release();
      }
    });

    test("replicate leaves the data on every worker", async () => {
      const fs = [7, 8, 9].map((v) => c.client.submitWith("tasks.js#double", [v], { workers: [c.workers[0]!.address] }));
      assert.deepEqual(await c.client.gather(fs), [14, 16, 18]);
      const held = await c.client.whoHas(fs);
      for (const f of fs) assert.deepEqual(held[f.key as string], [c.workers[0]!.address]);
      await c.client.replicate(fs);
      const replicated = await c.client.whoHas(fs);
      const all = c.workers.map((w) => w.address).sort();
      for (const f of fs) assert.deepEqual([...replicated[f.key as string]!].sort(), all, `who_has ${f.key}`);
      // hasWhat says the same from the workers' side.
      const hw = await c.client.hasWhat();
      for (const a of all) for (const f of fs) assert.ok(hw[a]!.includes(f.key as string), `${a} lacks ${f.key}`);
      // And the replica on the other worker is real data: a task pinned there reads it.
      const there = c.client.submitWith("mustshow.js#where", [fs[0]], { workers: [c.workers[1]!.address] });
      assert.deepEqual(await there.result(), { value: 14, worker: "w2" });
    });
  });
}
