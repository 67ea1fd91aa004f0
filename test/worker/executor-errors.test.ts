// Task failures as Python exceptions: outcomes of real failing tasks (JS throws of several
// types, a Wasm trap) -> exceptionPickle -> read back by Debian's Python with pickle.loads and
// with distributed's own clean_exception (what a Client does with task-erred, §10.1), and by our
// data-only pickle reader. Threads + one Python process; no sockets.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { Executor, exceptionPickle, exceptionText, pythonExceptionClass, tracebackText } from "../../src/worker/executor.ts";
import type { TaskOutcome } from "../../src/worker/executor.ts";
import { describeException, readPickle } from "../../src/protocol/pickle-reader.ts";
import { REPO, runPython } from "../helpers/env.ts";

type ErrorOutcome = Extract<TaskOutcome, { status: "error" }>;

let ex: Executor;
const outcomes: ErrorOutcome[] = [];

before(async () => {
  ex = new Executor({ nthreads: 1, modules: [REPO + "examples/tasks.js"], allowSource: true });
  const src = (source: string) => ex.run({ key: "s", fn: { kind: "source", source }, args: [], kwargs: {} });
  const runs: Array<Promise<TaskOutcome>> = [
    ex.run({ key: "f", fn: { kind: "js", ref: "tasks.js#fail" }, args: ["boom from JS"], kwargs: {} }),
    ex.run({ key: "t", fn: { kind: "js", ref: "tasks.js#failType" }, args: ["not a number: 'x'"], kwargs: {} }),
    src("() => new Array(-1)"), // RangeError
    src("() => undefinedName"), // ReferenceError
    src("() => { class MyError extends Error { name = 'MyError' } throw new MyError('custom é ✓') }"),
    src("() => { throw 'a bare string' }"),
  ];
  const wasmPath = REPO + "build/examples/tasks.wasm";
  if (existsSync(wasmPath)) {
    runs.push(ex.run({ key: "w", fn: { kind: "wasm", export: "trap" }, args: [new Uint8Array(readFileSync(wasmPath))], kwargs: {} }));
  }
  for (const o of await Promise.all(runs)) {
    assert.equal(o.status, "error");
    outcomes.push(o as ErrorOutcome);
  }
});
after(() => ex.close());

test("JS error names map to Python builtins classes", () => {
  assert.deepEqual(
    outcomes.map((o) => [o.typeName, pythonExceptionClass(o.typeName)]).slice(0, 6),
    [["Error", "Exception"], ["TypeError", "TypeError"], ["RangeError", "ValueError"], ["ReferenceError", "NameError"], ["MyError", "Exception"], ["Error", "Exception"]],
  );
  if (outcomes.length > 6) assert.deepEqual([outcomes[6]!.typeName, pythonExceptionClass(outcomes[6]!.typeName)], ["RuntimeError", "RuntimeError"]);
});

test("exceptionText carries name, message and the stack once; tracebackText the frames", () => {
  const o = outcomes[0]!;
  const text = exceptionText(o);
  assert.ok(text.startsWith("Error: boom from JS\n    at fail ("), text);
  assert.equal(text.split("boom from JS").length, 2, "the message appears once");
  assert.ok(tracebackText(o).startsWith("    at fail ("));
  assert.equal(exceptionText({ typeName: "Error", message: "m", stack: "" }), "Error: m");
  assert.equal(tracebackText({ typeName: "Error", message: "m", stack: "" }), "");
});

test("Python's pickle.loads and distributed's clean_exception raise the mapped class with the JS text", () => {
  const extra: ErrorOutcome[] = [
    // Lone surrogate (becomes U+FFFD) and a text longer than 64 KiB (BINUNICODE's u32 length).
    { status: "error", typeName: "TypeError", message: "bad \ud800 half", stack: "", start: 0, stop: 0, thread: 0 },
    { status: "error", typeName: "RangeError", message: "x".repeat(70_000), stack: "RangeError: " + "x".repeat(70_000) + "\n    at f (a.js:1:1)", start: 0, stop: 0, thread: 0 },
  ];
  const all = [...outcomes, ...extra];
  const input = JSON.stringify(all.map((o) => Buffer.from(exceptionPickle(o)).toString("hex")));
  const py = String.raw`
import sys, json, pickle
from distributed.core import clean_exception
out = []
for h in json.load(sys.stdin):
    b = bytes.fromhex(h)
    e = pickle.loads(b)
    typ, exc, tb = clean_exception(b, None)
    assert typ is type(e) and tb is None, (typ, type(e))
    out.append([type(e).__module__, type(e).__name__, e.args[0] if len(e.args) == 1 else None, len(e.args), isinstance(e, Exception)])
print(json.dumps(out))
`;
  const got = JSON.parse(runPython(py, input).toString()) as Array<[string, string, string, number, boolean]>;
  assert.equal(got.length, all.length);
  all.forEach((o, i) => {
    const [mod, name, arg0, nargs, isExc] = got[i]!;
    assert.equal(mod, "builtins");
    assert.equal(name, pythonExceptionClass(o.typeName));
    assert.equal(nargs, 1);
    assert.ok(isExc);
    assert.equal(arg0, exceptionText(o).replace(/[\ud800-\udfff]/g, "\ufffd"), `outcome ${i}`);
  });
  assert.match(got[0]![2], /^Error: boom from JS\n {4}at fail \(file:.*tasks\.js/);
});

test("our own data-only reader describes the pickle (what a JS client shows)", () => {
  const o = outcomes[1]!;
  const bytes = exceptionPickle(o);
  assert.match(describeException(bytes), /TypeError/);
  assert.match(describeException(bytes), /not a number: 'x'/);
  // Not on the reader's allow-list as a call: without opaqueGlobals it is refused, not executed.
  assert.throws(() => readPickle(bytes), (e: Error & { code?: string }) => e.code === "DASK_ERR_PICKLE_GLOBAL");
});
