// InlineExecutor (src/worker/task-runner.ts): the single-thread executor of the browser's Web
// Worker and of workerd, run here in the test's own thread. Allow-listed JS exports (sync, async,
// kwargs, throws), shipped source refused unless allowed, the example Wasm module (add, a trap
// drops the instance), a precompiled-only WasmCache (workerd: compile:false), strict one-at-a-time
// order and `current`. No sleeps: overlap is ruled out with gates the test opens itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { InlineExecutor, registryFromNamespaces, sha256Hex, WasmCache } from "../../src/worker/task-runner.ts";
import type { TaskCall } from "../../src/worker/run-spec.ts";
import { ConfigError } from "../../src/errors.ts";
import { REPO } from "../helpers/env.ts";
import { err, ok } from "../helpers/outcome.ts";

const WASM_PATH = REPO + "build/examples/tasks.wasm";
const tasks = (await import(pathToFileURL(REPO + "examples/tasks.js").href)) as Record<string, unknown>;

function wasmBytes(): Uint8Array {
  if (!existsSync(WASM_PATH)) {
    const r = spawnSync("npx", ["--no-install", "asc", "examples/wasm/assembly/index.ts", "--config", "examples/wasm/asconfig.json", "--target", "release"], { cwd: REPO, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  return new Uint8Array(readFileSync(WASM_PATH));
}

const js = (ref: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, key: TaskCall["key"] = ref): TaskCall => ({ key, fn: { kind: "js", ref }, args, kwargs });
const wasm = (name: string, mod: Uint8Array, args: unknown[] = []): TaskCall => ({ key: `wasm-${name}`, fn: { kind: "wasm", export: name }, args: [mod, ...args], kwargs: {} });
const source = (text: string, args: unknown[] = []): TaskCall => ({ key: "src", fn: { kind: "source", source: text }, args, kwargs: {} });


function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** One macrotask turn: every microtask queued so far (a would-be overlapping task start) has run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test("registryFromNamespaces indexes functions only, as 'basename#export'; '#' in a basename is a ConfigError", () => {
  const reg = registryFromNamespaces({ "tasks.js": tasks, "m.js": { f: () => 1, notFn: 3 } });
  assert.equal(reg.get("tasks.js#inc"), tasks.inc);
  assert.ok(reg.has("m.js#f"));
  assert.ok(!reg.has("m.js#notFn"));
  assert.throws(() => registryFromNamespaces({ "a#b.js": {} }), ConfigError);
});

test("JS exports: sync, async, kwargs as one trailing object; thread 0 and start <= stop", async () => {
  const seen: unknown[][] = [];
  const ex = new InlineExecutor({ registry: registryFromNamespaces({ "tasks.js": tasks, "k.js": { rec: (...a: unknown[]) => (seen.push(a), a.length) } }) });
  await ex.start();
  const inc = await ex.run(js("tasks.js#inc", [41]));
  assert.equal(ok(inc), 42);
  assert.equal(inc.thread, 0);
  assert.ok(inc.start <= inc.stop);
  assert.equal(ok(await ex.run(js("tasks.js#incLater", [1]))), 2);
  assert.equal(ok(await ex.run(js("k.js#rec", [1, 2], { scale: 3 }))), 3);
  assert.equal(ok(await ex.run(js("k.js#rec", [1, 2]))), 2, "no kwargs: no trailing object");
  assert.deepEqual(seen, [[1, 2, { scale: 3 }], [1, 2]]);
  assert.deepEqual({ run: ex.stats.tasksRun, failed: ex.stats.tasksFailed }, { run: 4, failed: 0 });
  await ex.close();
});

test("a throwing task is an error outcome with its name and message; an unknown export is coded", async () => {
  class BadInput extends Error {
    override name = "BadInput";
  }
  const ex = new InlineExecutor({
    registry: registryFromNamespaces({
      "t.js": {
        boom: (x: number) => {
          throw new BadInput(`no ${x}`);
        },
        reject: async () => {
          throw new RangeError("async no");
        },
        str: () => {
          throw "plain";
        },
      },
    }),
  });
  const a = err(await ex.run(js("t.js#boom", [7])));
  assert.equal(a.typeName, "BadInput");
  assert.equal(a.message, "no 7");
  assert.match(a.stack, /boom|BadInput/);
  const b = err(await ex.run(js("t.js#reject")));
  assert.deepEqual([b.typeName, b.message], ["RangeError", "async no"]);
  const c = err(await ex.run(js("t.js#str")));
  assert.deepEqual([c.typeName, c.message], ["Error", "plain"]);
  const d = err(await ex.run(js("t.js#missing")));
  assert.equal(d.code, "DASK_ERR_UNKNOWN_FUNCTION");
  assert.match(d.message, /t\.js#boom/, "names what exists");
  assert.deepEqual({ run: ex.stats.tasksRun, failed: ex.stats.tasksFailed }, { run: 4, failed: 4 });
  // and it still runs the next task
  const ex2 = new InlineExecutor({ registry: registryFromNamespaces({ "tasks.js": tasks }) });
  assert.equal(ok(await ex2.run(js("tasks.js#double", [4]))), 8);
});

test("shipped source is refused with DASK_ERR_SOURCE_NOT_ALLOWED by default, runs with allowSource", async () => {
  let ran = false;
  (globalThis as Record<string, unknown>).__inlineSourceRan = () => (ran = true);
  try {
    const src = "(x) => { globalThis.__inlineSourceRan(); return x * 3; }";
    const closed = new InlineExecutor({ registry: new Map() });
    const r = err(await closed.run(source(src, [5])));
    assert.equal(r.code, "DASK_ERR_SOURCE_NOT_ALLOWED");
    assert.equal(r.typeName, "PermissionError");
    assert.equal(r.thread, -1);
    assert.equal(ran, false, "refused source must not have been evaluated");

    const open = new InlineExecutor({ registry: new Map(), allowSource: true });
    assert.equal(ok(await open.run(source(src, [5]))), 15);
    assert.equal(ran, true);
  } finally {
    delete (globalThis as Record<string, unknown>).__inlineSourceRan;
  }
});

test("Wasm: add runs; a trap is an error outcome, drops the instance (bump restarts at 1), and the next call works", async () => {
  const mod = wasmBytes();
  const ex = new InlineExecutor({ registry: new Map() });
  assert.equal(ok(await ex.run(wasm("add", mod, [2.5, 4]))), 6.5);
  assert.equal(ok(await ex.run(wasm("bump", mod))), 1);
  assert.equal(ok(await ex.run(wasm("bump", mod))), 2);
  const t = err(await ex.run(wasm("trap", mod)));
  assert.equal(t.typeName, "RuntimeError");
  assert.equal(ex.stats.wasmTraps, 1);
  assert.equal(ok(await ex.run(wasm("bump", mod))), 1, "a fresh instance after the trap");
  assert.equal(ok(await ex.run(wasm("fib", mod, [10]))), 55);
  assert.equal(ex.stats.wasmModulesCompiled, 1, "one module, compiled once");
  const bad = err(await ex.run(wasm("add", Uint8Array.of(0, 1, 2, 3), [1, 2])));
  assert.equal(bad.code, "DASK_ERR_WASM_MODULE");
  const abi = err(await ex.run(wasm("add", mod, ["a", 1])));
  assert.equal(abi.code, "DASK_ERR_WASM_ABI");
});

test("precompiled-only cache (compile:false): unknown bytes -> DASK_ERR_WASM_NOT_BUNDLED; the bundled hash is served", async () => {
  const mod = wasmBytes();
  const hash = await sha256Hex(mod);
  const precompiled = new Map([[hash, await WebAssembly.compile(mod as Uint8Array<ArrayBuffer>)]]);
  const cache = new WasmCache({ precompiled, compile: false });
  const ex = new InlineExecutor({ registry: new Map(), wasmCache: cache });
  assert.equal(ok(await ex.run(wasm("add", mod, [1, 2]))), 3);
  // Other bytes, same meaning: the module plus an empty custom section (a new hash, still valid).
  const other = new Uint8Array(mod.length + 3);
  other.set(mod);
  other.set([0, 1, 0], mod.length); // custom section id 0, size 1, name length 0
  assert.ok(WebAssembly.validate(other as Uint8Array<ArrayBuffer>), "the altered module is still valid Wasm");
  const r = err(await ex.run(wasm("add", other, [1, 2])));
  assert.equal(r.code, "DASK_ERR_WASM_NOT_BUNDLED");
  assert.equal(ex.stats.wasmModulesCompiled, 0, "nothing was compiled at run time");
  // A compiling cache runs the same altered bytes: the refusal was the cache's policy.
  const ex2 = new InlineExecutor({ registry: new Map() });
  assert.equal(ok(await ex2.run(wasm("add", other, [1, 2]))), 3);
});

test("tasks run strictly one at a time, in arrival order; `current` and `executing` describe the running task", async () => {
  const log: string[] = [];
  const gateA = deferred();
  const startedA = deferred();
  let ex!: InlineExecutor;
  const seenCurrent: string[] = [];
  const reg = registryFromNamespaces({
    "o.js": {
      slow: async (name: string) => {
        log.push(`start ${name}`);
        seenCurrent.push(ex.current);
        startedA.resolve();
        await gateA.promise;
        log.push(`end ${name}`);
        return name;
      },
      fast: (name: string) => {
        log.push(`start ${name}`);
        seenCurrent.push(ex.current);
        log.push(`end ${name}`);
        return name;
      },
    },
  });
  ex = new InlineExecutor({ registry: reg });
  assert.equal(ex.current, "");
  const a = ex.run(js("o.js#slow", ["a"], {}, ["slow-a", 0]));
  const b = ex.run(js("o.js#fast", ["b"], {}, "fast-b"));
  const c = ex.run(js("o.js#fast", ["c"], {}, "fast-c"));
  await startedA.promise;
  await turn();
  await turn();
  // a is parked on its gate: an executor that overlapped tasks would have started b and c by now.
  assert.deepEqual(log, ["start a"]);
  assert.equal(ex.executing, 1);
  assert.equal(ex.current, "('slow-a', 0)");
  gateA.resolve();
  assert.deepEqual(await Promise.all([a, b, c]).then((os) => os.map(ok)), ["a", "b", "c"]);
  assert.deepEqual(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
  assert.deepEqual(seenCurrent, ["('slow-a', 0)", "fast-b", "fast-c"]);
  assert.equal(ex.current, "");
  assert.equal(ex.executing, 0);
});

test("after close, tasks are refused with DASK_ERR_EXECUTOR_CLOSED", async () => {
  const ex = new InlineExecutor({ registry: registryFromNamespaces({ "tasks.js": tasks }) });
  await ex.close();
  assert.equal(err(await ex.run(js("tasks.js#inc", [1]))).code, "DASK_ERR_EXECUTOR_CLOSED");
});
