// LIVE, issue 4 must-show 4, on the local cluster (a dask-scheduler of each flavor + in-process
// dask-wasm workers, src/client/local-cluster.ts): releasing every future of a computation
// leaves the scheduler holding none of its keys (whoHas empty) and the workers storing nothing;
// `restart` cancels the client's futures, leaves the workers empty, and they run new work.
//
// Releases travel on the client's batched stream while whoHas is an RPC on another comm, so
// the two are not ordered: the checks below repeat the RPC until the scheduler agrees, with an
// overall deadline (each round is one request/reply, no sleeping).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../../../src/client/client.ts";
import { startLocalCluster, type LocalClusterHandle } from "../../../src/client/local-cluster.ts";
import { TASKS_JS } from "../../helpers/wasm-worker.ts";
import { MUSTSHOW_JS } from "../../helpers/client-cluster.ts";
import { flavors, pythonLaunch } from "../../helpers/dask.ts";

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let cluster: LocalClusterHandle;
    let client: Client;
    before(async () => {
      cluster = await startLocalCluster({ nWorkers: 2, modules: [TASKS_JS, MUSTSHOW_JS], namePrefix: "m4", schedulerEnv: pythonLaunch(flavor).env });
      client = await Client.connect(cluster.address);
    });
    after(async () => {
      await client?.close();
      await cluster?.close();
    });

    /** Repeats `probe` (an RPC) until it returns true; fails with `describe()` after `ms`. */
    async function eventually(probe: () => Promise<boolean>, describe: () => Promise<string>, ms = 30_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!(await probe())) {
        if (Date.now() > deadline) assert.fail(`not reached within ${ms} ms: ${await describe()}`);
      }
    }

    const storedKeys = (): number => cluster.workers.reduce((n, w) => n + w.metrics().keysStored, 0);

    test("releasing every future of a computation leaves whoHas empty and the workers' stores empty", async () => {
      const xs = client.map("tasks.js#inc", Array.from({ length: 30 }, (_, i) => i));
      const doubled = xs.map((x) => client.submit("tasks.js#double", x));
      const total = client.submit("tasks.js#sum", doubled);
      assert.equal(await total.result(), Array.from({ length: 30 }, (_, i) => 2 * (i + 1)).reduce((a, b) => a + b, 0));
      const all = [...xs, ...doubled, total];
      const held = await client.whoHas(all);
      assert.ok(Object.values(held).some((ws) => ws.length > 0), "nothing was held before the release");
      assert.ok(storedKeys() > 0);

      for (const f of all) f.release();
      await eventually(
        async () => Object.keys(await client.whoHas()).length === 0 && storedKeys() === 0,
        async () => `whoHas ${JSON.stringify(await client.whoHas())}, ${storedKeys()} keys stored on workers`,
      );
      const hw = await client.hasWhat();
      assert.equal(Object.keys(hw).length, 2);
      for (const keys of Object.values(hw)) assert.deepEqual(keys, []);
    });

    test("restart cancels the futures, leaves the workers empty, and they are usable", async () => {
      const fs = client.map("tasks.js#inc", [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(await client.gather(fs), [2, 3, 4, 5, 6, 7]);
      const old = cluster.workers.map((w) => w.address);
      await client.restart();
      for (const f of fs) assert.equal(f.status, "cancelled");
      await assert.rejects(fs[0]!.result());
      // dask restarts nanny-less workers by removing them; the local cluster brings up as many.
      await cluster.waitForWorkers(2);
      assert.equal(cluster.replaced, 2);
      assert.equal(storedKeys(), 0);
      assert.deepEqual(await client.whoHas(), {});
      const nc = await client.ncores();
      assert.deepEqual(Object.keys(nc).sort(), cluster.workers.map((w) => w.address).sort());
      for (const a of Object.keys(nc)) assert.ok(!old.includes(a));
      // Usable: new work runs on them, on both.
      const again = [0, 1].map((i) => client.submitWith("mustshow.js#where", [i], { workers: [cluster.workers[i]!.address] }));
      const got = (await client.gather(again)) as Array<{ value: number; worker: string }>;
      assert.deepEqual(got.map((g) => g.value), [0, 1]);
      assert.deepEqual(got.map((g) => g.worker).sort(), ["m4-0", "m4-1"]);
    });
  });
}
