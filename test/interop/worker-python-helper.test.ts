// python/dask_wasm, checked from the outside (issue 3 "python/dask_wasm"): js()/wasm() references
// pickle, under every pickler a dask client uses, to a plain str that unpickles in a Python with
// NO dask_wasm importable and that our own pickle reader reads; dask tokens are stable across
// processes (each run has its own hash seed) and differ between references; calling a reference
// in Python raises the explanatory RuntimeError. No cluster: Debian's Python only.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { runPython } from "../helpers/env.ts";
import { PYTHON_DIR, SCRIPTS_DIR, resultOf } from "../helpers/wasm-worker.ts";
import { readPickle } from "../../src/protocol/pickle-reader.ts";

type Ref = {
  kind: string; ref: string; tagged: string; repr: string; pickles: Record<string, string>; token: string; token_again: string;
  token_with_args: string; funcname: string; parse: string[]; call: { type: string; text: string } | null; equal_to_copy: boolean;
};
type Facts = { refs: Record<string, Ref>; parse_other: unknown[]; bad_kind: { type: string } | null; bad_ref: { type: string } | null; resource: string };

/** Runs check_dask_wasm.py in a fresh interpreter (-I: its own random hash seed). */
function facts(): Facts {
  const code = [
    "import runpy, sys",
    `sys.path[:0] = [${JSON.stringify(PYTHON_DIR)}, ${JSON.stringify(SCRIPTS_DIR)}]`,
    `runpy.run_path(${JSON.stringify(SCRIPTS_DIR + "check_dask_wasm.py")}, run_name="__main__")`,
  ].join("\n");
  return resultOf(runPython(code).toString("utf8")) as unknown as Facts;
}

let first: Facts;
let second: Facts;
before(() => {
  first = facts();
  second = facts();
});

test("references pickle to the tagged plain str, whatever pickler the client uses", () => {
  for (const r of Object.values(first.refs)) {
    assert.equal(r.tagged, `dask-wasm:${r.kind}:${r.ref}`);
    for (const [how, hex] of Object.entries(r.pickles)) {
      const bytes = Buffer.from(hex, "hex");
      assert.ok(!bytes.includes("dask_wasm"), `${r.repr} ${how}: the pickle must not name the dask_wasm module`);
      assert.equal(readPickle(new Uint8Array(bytes)), r.tagged, `${r.repr} ${how}: our reader`);
    }
  }
});

test("the pickles unpickle to the str in a Python where dask_wasm is NOT importable", () => {
  const all = Object.values(first.refs).flatMap((r) => Object.values(r.pickles).map((hex) => ({ hex, tagged: r.tagged })));
  const code = [
    "import json, pickle, sys",
    "try:",
    "    import dask_wasm",
    "    importable = True",
    "except ImportError:",
    "    importable = False",
    "out = [[type(v).__name__, v] for v in (pickle.loads(bytes.fromhex(h)) for h in json.load(sys.stdin))]",
    "print(json.dumps({'importable': importable, 'values': out}))",
  ].join("\n");
  const got = JSON.parse(runPython(code, JSON.stringify(all.map((a) => a.hex))).toString("utf8")) as { importable: boolean; values: Array<[string, string]> };
  assert.equal(got.importable, false, "the check must run without dask_wasm on the path");
  assert.deepEqual(got.values, all.map((a) => ["str", a.tagged]));
});

test("dask tokens are stable across processes and tell references apart", () => {
  const tokens = new Set<string>();
  for (const [name, r] of Object.entries(first.refs)) {
    assert.equal(r.token, r.token_again, `${name}: equal references, equal tokens`);
    assert.equal(r.token, second.refs[name]!.token, `${name}: same token in another process`);
    assert.equal(r.token_with_args, second.refs[name]!.token_with_args, `${name}: with args, another process`);
    tokens.add(r.token);
  }
  assert.equal(tokens.size, Object.keys(first.refs).length, "different references, different tokens (js vs wasm of the same name too)");
});

test("keys are named after the export, and parse() inverts the tag", () => {
  assert.equal(first.refs.js_inc!.funcname, "inc");
  assert.equal(first.refs.wasm_add!.funcname, "add");
  for (const r of Object.values(first.refs)) {
    assert.deepEqual(r.parse, [r.kind, r.ref]);
    assert.equal(r.equal_to_copy, true);
  }
  assert.deepEqual(first.parse_other, [null, null, null, null]);
});

test("calling a reference in Python raises the explanatory RuntimeError; bad references are refused", () => {
  for (const r of Object.values(first.refs)) {
    assert.equal(r.call?.type, "RuntimeError");
    assert.ok(r.call!.text.includes(r.repr), r.call!.text);
    assert.match(r.call!.text, /only on dask-wasm workers/);
    assert.ok(r.call!.text.includes(`resources={'${first.resource}': 1}`), r.call!.text);
  }
  assert.equal(first.bad_kind?.type, "ValueError");
  assert.equal(first.bad_ref?.type, "TypeError");
});
