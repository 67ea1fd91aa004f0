// LIVE, issue 6 must-show 3's premise, for each dask flavor: the scheduler the dialect suite
// runs against has NO dask_wasm (the repository's python/) in its environment, it is the dask
// version the flavor names, and a dask_wasm task reference pickled by a client that has
// dask_wasm unpickles where dask_wasm is absent (to its tagged plain str), which is what lets a
// 2026 scheduler (it unpickles every graph) accept Python clients' dask-wasm tasks at all.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Client } from "../../../src/client/client.ts";
import { flavors, runPythonScript, startScheduler, stopAll, type Scheduler } from "../../helpers/dask.ts";
import { PYTHON_DIR } from "../../helpers/wasm-worker.ts";

/** The environment of a running process (Linux /proc), as a map. */
function procEnv(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return out;
}

/** Python that prints one JSON line about the interpreter it runs in (the scheduler's flavor). */
const PROBE = [
  "import importlib.util, json, pickle, sys, distributed",
  "ref = pickle.loads(bytes.fromhex(sys.argv[1]))",
  "print(json.dumps({'dask_wasm': importlib.util.find_spec('dask_wasm') is not None, 'version': distributed.__version__,",
  "  'ref_type': type(ref).__name__, 'ref': ref, 'path': sys.path}))",
].join("\n");

for (const { flavor, skip } of flavors()) {
  describe(`dask ${flavor.name}`, { skip }, () => {
    let scheduler: Scheduler;
    before(async () => {
      scheduler = await startScheduler({ flavor });
    });
    after(stopAll);

    test("the scheduler process's environment has no path to the repository's python/ (dask_wasm)", () => {
      const env = procEnv(scheduler.proc.pid!);
      const pythonPath = env.get("PYTHONPATH") ?? "";
      assert.equal(pythonPath, flavor.pythonPath ?? "", "PYTHONPATH is exactly the flavor's (none for 2022)");
      assert.ok(!pythonPath.split(":").some((p) => p.replace(/\/$/, "") === PYTHON_DIR.replace(/\/$/, "")), pythonPath);
    });

    test("with the scheduler's interpreter and environment: no dask_wasm, the flavor's distributed, a dask_wasm reference unpickles to its tagged str", async () => {
      // Pickled where dask_wasm IS importable (a client, Debian's Python: the pickle is plain protocol 4)...
      const hex = (await runPythonScript(`import sys, pickle; sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)}); import dask_wasm; print(pickle.dumps(dask_wasm.js("tasks.js#inc")).hex())`)).trim();
      // ... and read with the scheduler's flags and PYTHONPATH, where it is not.
      const r = JSON.parse(await runPythonScript(PROBE, [hex], { flavor })) as { dask_wasm: boolean; version: string; ref_type: string; ref: string; path: string[] };
      assert.equal(r.dask_wasm, false, `dask_wasm importable from ${r.path.join(":")}`);
      // Debian's build says "2022.12.1+ds.1": the flavor's version plus a local tag.
      assert.equal(r.version.split("+")[0], flavor.name);
      assert.deepEqual([r.ref_type, r.ref], ["str", "dask-wasm:js:tasks.js#inc"]);
    });

    test("the TypeScript client picks this scheduler's dialect from its versions reply", async () => {
      const client = await Client.connect(scheduler.address);
      try {
        assert.equal(client.dialect, flavor.name.startsWith("2026") ? "2026" : "2022");
      } finally {
        await client.close();
      }
    });
  });
}
