// LIVE, issue 4 must-show 3: datasets across clients and languages on each flavor's scheduler.
// (a) futures published by one TypeScript client are read (and computed on) by a second one,
// and stay alive after the publisher released its own handles; (b) a plain value published by
// TypeScript is read by a second TypeScript client and by a Python distributed.Client; (c) the
// reverse: plain values published from Python are read by TypeScript.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Future } from "../../../src/client/client.ts";
import { flavors, runPythonClient } from "../../helpers/dask.ts";
import { startTestCluster, type TestCluster } from "../../helpers/client-cluster.ts";

// The same suite against each dask flavor (test/helpers/dask.ts flavors(): 2026.7.1 only when configured).
for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let c: TestCluster;
    before(async () => {
      c = await startTestCluster({ workers: [{ name: "w1" }], flavor });
    });
    after(() => c?.stop());

    /** The one JSON line a Python snippet printed after "RESULT ". */
    function resultLine(out: string): unknown {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      assert.ok(line, `no RESULT line in:\n${out}`);
      return JSON.parse(line.slice(7));
    }

    test("futures published by one TS client are read by a second TS client", async () => {
      const inputs = [1, 2, 3, 4];
      const fs = c.client.map("tasks.js#double", inputs);
      await c.client.gather(fs);
      await c.client.publishDataset("doubled", fs);
      // The publisher lets go of its own handles: the dataset alone keeps the keys.
      for (const f of fs) f.release();
      const other = await c.newClient();
      assert.ok((await other.listDatasets()).includes("doubled"));
      const got = (await other.getDataset("doubled")) as Future[];
      assert.ok(Array.isArray(got) && got.every((f) => f instanceof Future));
      assert.deepEqual(got.map((f) => f.key), fs.map((f) => f.key));
      assert.deepEqual(await other.gather(got), inputs.map((x) => x * 2));
      // And they are usable as arguments of new work on the second client.
      const total = other.submit("tasks.js#sum", got);
      assert.equal(await total.result(), inputs.reduce((s, x) => s + x * 2, 0));
      await c.client.unpublishDataset("doubled");
      assert.ok(!(await other.listDatasets()).includes("doubled"));
    });

    const PLAIN = { name: "from-ts", values: [1, 2.5, -3], nested: { ok: true, none: null, text: "héllo" } };

    test("a plain value published by TS is read by a second TS client and by Python", async () => {
      await c.client.publishDataset("ts_plain", PLAIN);
      const other = await c.newClient();
      assert.deepEqual(await other.getDataset("ts_plain"), PLAIN);
      const out = await runPythonClient(c.scheduler.address, [
        "import json",
        "v = client.get_dataset('ts_plain')",
        "print('RESULT ' + json.dumps({'value': v, 'names': sorted(client.list_datasets())}))",
      ].join("\n"), { flavor });
      const r = resultLine(out) as { value: unknown; names: string[] };
      assert.deepEqual(r.value, PLAIN);
      assert.ok(r.names.includes("ts_plain"));
    });

    test("plain values published by Python are read by TS", async () => {
      await runPythonClient(c.scheduler.address, [
        "client.publish_dataset(py_plain={'name': 'from-python', 'values': [10, 20.5, -30], 'flag': False, 'text': 'ünïcode'})",
        "client.publish_dataset(py_list=[1, 'two', 3.0, None])",
        "print('published')",
      ].join("\n"), { flavor });
      const names = await c.client.listDatasets();
      assert.ok(names.includes("py_plain") && names.includes("py_list"), names.join(","));
      assert.deepEqual(await c.client.getDataset("py_plain"), { name: "from-python", values: [10, 20.5, -30], flag: false, text: "ünïcode" });
      assert.deepEqual(await c.client.getDataset("py_list"), [1, "two", 3, null]);
      await assert.rejects(c.client.getDataset("no_such_dataset"), (e: Error & { code?: string }) => e.code === "DASK_ERR_DATASET_MISSING");
    });
  });
}
