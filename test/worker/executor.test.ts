// Executor: real worker_threads running examples/tasks.js and the example Wasm module
// (build/examples/tasks.wasm, built by scripts/dev.sh ensure_wasm; built here if missing).
// No sleeps: overlap is shown with stamps taken around a shared barrier, not with durations.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Executor } from "../../src/worker/executor.ts";
import type { TaskCall } from "../../src/worker/executor.ts";
import { REPO } from "../helpers/env.ts";
import { err, ok } from "../helpers/outcome.ts";

const TASKS = REPO + "examples/tasks.js";
const WASM_PATH = REPO + "build/examples/tasks.wasm";

function wasmBytes(): Uint8Array {
  if (!existsSync(WASM_PATH)) {
    const r = spawnSync("npx", ["--no-install", "asc", "examples/wasm/assembly/index.ts", "--config", "examples/wasm/asconfig.json", "--target", "release"], { cwd: REPO, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  return new Uint8Array(readFileSync(WASM_PATH));
}

const js = (ref: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}): TaskCall => ({ key: ref, fn: { kind: "js", ref: `tasks.js#${ref}` }, args, kwargs });
const wasm = (name: string, mod: Uint8Array, args: unknown[] = []): TaskCall => ({ key: name, fn: { kind: "wasm", export: name }, args: [mod, ...args], kwargs: {} });

interface Stamp {
  start: number;
  stop: number;
  together: boolean;
}


describe("executor with 2 threads", () => {
  let ex: Executor;
  before(async () => {
    ex = new Executor({ nthreads: 2, modules: [TASKS], allowSource: false, name: "worker-a" });
    await ex.start();
  });
  after(() => ex.close());

  test("registered exports: inc, add, sum, kwargs as one trailing object, async", async () => {
    assert.equal(ok(await ex.run(js("inc", [1]))), 2);
    assert.equal(ok(await ex.run(js("add", [2, 3.5]))), 5.5);
    assert.equal(ok(await ex.run(js("sum", [[1, 2, 3]]))), 6);
    assert.deepEqual(ok(await ex.run(js("echo", [1], { k: "v" }))), 1);
    assert.equal(ok(await ex.run(js("incLater", [41]))), 42);
  });

  test("values cross threads by structured clone: bytes, Map, Set, typed arrays, bigint", async () => {
    const v = { b: new Uint8Array([1, 2, 3]), m: new Map<unknown, unknown>([[1, "a"]]), s: new Set(["x"]), n: 2n ** 70n, nested: [null, true, "é"] };
    assert.deepEqual(ok(await ex.run(js("echo", [v]))), v);
    const t = ok(await ex.run(js("typed", [4])));
    assert.ok(t instanceof Float64Array);
    assert.deepEqual([...t], [0, 0.5, 1, 1.5]);
    assert.equal(ok(await ex.run(js("whoami"))), "worker-a");
  });

  test("a JS throw is an error outcome with name, message and the task's stack", async () => {
    const e = err(await ex.run(js("fail", ["boom 42"])));
    assert.equal(e.typeName, "Error");
    assert.equal(e.message, "boom 42");
    assert.match(e.stack, /at fail \(file:\/\/.*examples\/tasks\.js:\d+:\d+\)/);
    assert.doesNotMatch(e.stack, /thread\.ts|task-runner\.ts|node:internal/, "executor frames are cut");
    assert.ok(e.thread >= 0 && e.thread < 2);
    const t = err(await ex.run(js("failType", ["bad type"])));
    assert.equal(t.typeName, "TypeError");
    // The thread survives its task's throw.
    assert.equal(ok(await ex.run(js("inc", [1]))), 2);
  });

  test("unknown export -> DASK_ERR_UNKNOWN_FUNCTION; unclonable args -> DASK_ERR_TASK_ARGS before any thread", async () => {
    const u = err(await ex.run(js("nope")));
    assert.equal(u.code, "DASK_ERR_UNKNOWN_FUNCTION");
    assert.match(u.message, /tasks\.js#inc/, "the message lists what is loaded");
    const a = err(await ex.run(js("echo", [() => 1])));
    assert.equal(a.code, "DASK_ERR_TASK_ARGS");
    assert.equal(a.thread, -1);
  });

  test("shipped source is refused without allowSource (DASK_ERR_SOURCE_NOT_ALLOWED)", async () => {
    const e = err(await ex.run({ key: "s", fn: { kind: "source", source: "(x) => x * 3" }, args: [2], kwargs: {} }));
    assert.equal(e.code, "DASK_ERR_SOURCE_NOT_ALLOWED");
  });

  test("two stamp tasks overlap with 2 threads (each starts before the other stops)", async () => {
    const barrier = new Int32Array(new SharedArrayBuffer(8));
    // The barrier makes each task wait (up to 60 s, never in a passing run) for the other to start.
    const [a, b] = (await Promise.all([ex.run(js("stamp", [60_000, barrier])), ex.run(js("stamp", [60_000, barrier]))])).map(ok) as Stamp[];
    assert.ok(a!.together && b!.together, "both tasks were in the barrier at once");
    assert.ok(a!.start < b!.stop && b!.start < a!.stop, `overlap: ${JSON.stringify([a, b])}`);
  });

  test("at most nthreads tasks run at once: a 3-party barrier never fills with 2 threads", async () => {
    const barrier = new Int32Array(new SharedArrayBuffer(8));
    // The first two wait 50 ms for a third party that can only start once one of them left.
    const stamps = (await Promise.all([0, 1, 2].map(() => ex.run(js("stamp", [50, barrier, 3]))))).map(ok) as Stamp[];
    assert.deepEqual(stamps.map((s) => s.together), [false, false, false]);
    assert.ok(stamps[2]!.start >= Math.min(stamps[0]!.stop, stamps[1]!.stop), JSON.stringify(stamps));
  });

  test("Wasm: add and fib compute; the module is compiled once for many calls", async () => {
    const mod = wasmBytes();
    const before = ex.stats.wasmModulesCompiled;
    assert.equal(ok(await ex.run(wasm("add", mod, [1.25, 2]))), 3.25);
    const fibs = await Promise.all([10, 20, 30, 1, 0].map((n) => ex.run(wasm("fib", mod.slice(), [n]))));
    assert.deepEqual(fibs.map(ok), [55, 6765, 832040, 1, 0]);
    assert.equal(ex.stats.wasmModulesCompiled - before, 1, "same bytes (even in a copy) compile once");
  });

  test("Wasm ABI errors: a non-number argument, a missing export, bytes that are not Wasm", async () => {
    const mod = wasmBytes();
    assert.equal(err(await ex.run(wasm("add", mod, ["1", 2]))).code, "DASK_ERR_WASM_ABI");
    // A call whose args cannot be posted must not leave the thread believing it has the module.
    // A trailing custom section (id 0, size 2, name "a") makes new bytes, hence a new hash.
    const fresh = new Uint8Array([...wasmBytes(), 0x00, 0x02, 0x01, 0x61]);
    assert.equal(err(await ex.run(wasm("add", fresh, [() => 1, 2]))).code, "DASK_ERR_TASK_ARGS");
    assert.equal(ok(await ex.run(wasm("add", fresh, [1, 2]))), 3);
    assert.equal(err(await ex.run(wasm("nope", mod))).code, "DASK_ERR_UNKNOWN_FUNCTION");
    assert.equal(err(await ex.run(wasm("add", new Uint8Array([1, 2, 3]), [1, 2]))).code, "DASK_ERR_WASM_MODULE");
    assert.equal(err(await ex.run({ key: "w", fn: { kind: "wasm", export: "add" }, args: [], kwargs: {} })).code, "DASK_ERR_WASM_MODULE");
  });
});

describe("executor with 1 thread", () => {
  let ex: Executor;
  before(async () => {
    ex = new Executor({ nthreads: 1, modules: [TASKS], allowSource: true });
    await ex.start();
  });
  after(() => ex.close());

  test("two stamp tasks do not overlap with 1 thread", async () => {
    const barrier = new Int32Array(new SharedArrayBuffer(8));
    // The first task waits for a second party that cannot start (one thread): 50 ms timeout.
    const [a, b] = (await Promise.all([ex.run(js("stamp", [50, barrier])), ex.run(js("stamp", [50, barrier]))])).map(ok) as Stamp[];
    assert.deepEqual([a!.together, b!.together], [false, false], "never both inside at once");
    assert.ok(a!.stop <= b!.start, `sequential: ${JSON.stringify([a, b])}`);
  });

  test("a Wasm trap is a RuntimeError; the instance is dropped and the next call starts fresh", async () => {
    const mod = wasmBytes();
    assert.equal(ok(await ex.run(wasm("bump", mod))), 1);
    assert.equal(ok(await ex.run(wasm("bump", mod))), 2, "same instance between calls");
    const traps = ex.stats.wasmTraps;
    const e = err(await ex.run(wasm("trap", mod)));
    assert.equal(e.typeName, "RuntimeError");
    assert.match(e.message, /unreachable/);
    assert.equal(ex.stats.wasmTraps, traps + 1);
    assert.equal(ok(await ex.run(wasm("bump", mod))), 1, "a new instance after the trap");
    assert.equal(ok(await ex.run(wasm("add", mod, [2, 2]))), 4);
  });

  test("shipped source runs with allowSource; kwargs arrive as the trailing object", async () => {
    const call = (source: string, args: unknown[], kwargs: Record<string, unknown> = {}): TaskCall => ({ key: "s", fn: { kind: "source", source }, args, kwargs });
    assert.equal(ok(await ex.run(call("(x) => x * 3", [14]))), 42);
    assert.deepEqual(ok(await ex.run(call("async (x, kw) => [x, kw.scale]", [1], { scale: 9 }))), [1, 9]);
    const notFn = err(await ex.run(call("42", [])));
    assert.equal(notFn.code, "DASK_ERR_TASK_SPEC");
    const syntax = err(await ex.run(call("(x) => {", [])));
    assert.equal(syntax.typeName, "SyntaxError");
    const clone = err(await ex.run(call("() => () => 1", [])));
    assert.equal(clone.typeName, "DataCloneError");
  });

  test("a thread that exits mid-task is replaced; its task fails with DASK_ERR_THREAD_DIED", async () => {
    const replaced = ex.stats.threadsReplaced;
    const dying = ex.run(js("exitThread", [5]));
    const queued = ex.run(js("inc", [7])); // queued behind the dying task, then runs on the new thread
    const e = err(await dying);
    assert.equal(e.code, "DASK_ERR_THREAD_DIED");
    assert.match(e.message, /exit code 5/);
    assert.equal(ok(await queued), 8);
    assert.equal(ex.stats.threadsReplaced, replaced + 1);
    assert.equal(ok(await ex.run(js("whoami"))), null, "no name configured");
  });

  test("stats count outcomes; close fails queued work and later runs", async () => {
    const s = ex.stats;
    assert.ok(s.tasksRun >= s.tasksFailed && s.tasksFailed >= 5, JSON.stringify(s));
    const slow = ex.run(js("stamp", [60_000, new Int32Array(new SharedArrayBuffer(8)), 2]));
    const queued = ex.run(js("inc", [1]));
    await ex.close();
    assert.equal(err(await slow).code, "DASK_ERR_EXECUTOR_CLOSED");
    assert.equal(err(await queued).code, "DASK_ERR_EXECUTOR_CLOSED");
    assert.equal(err(await ex.run(js("inc", [1]))).code, "DASK_ERR_EXECUTOR_CLOSED");
  });
});

describe("module loading", () => {
  const dir = mkdtempSync(join(tmpdir(), "dask-wasm-exec-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a module that throws at import -> start rejects with DASK_ERR_MODULE_LOAD", async () => {
    const bad = join(dir, "bad.js");
    writeFileSync(bad, 'throw new Error("broken module");\n');
    const ex = new Executor({ nthreads: 2, modules: [TASKS, bad], allowSource: false });
    await assert.rejects(ex.start(), (e: Error & { code?: string }) => e.code === "DASK_ERR_MODULE_LOAD" && /broken module/.test(e.message));
    await ex.close();
    // run() never rejects: on a pool that could not start it reports the reason.
    const lazy = new Executor({ nthreads: 1, modules: [bad], allowSource: false });
    const o = err(await lazy.run(js("inc", [1])));
    assert.ok(o.code === "DASK_ERR_MODULE_LOAD" || o.code === "DASK_ERR_EXECUTOR_CLOSED", o.code);
    await lazy.close();
  });

  test("two modules with the same basename are refused; only function exports are callable", async () => {
    writeFileSync(join(dir, "tasks.js"), "export const x = 1; export function y() { return 2; }\n");
    const dup = new Executor({ nthreads: 1, modules: [TASKS, join(dir, "tasks.js")], allowSource: false });
    await assert.rejects(dup.start(), (e: Error & { code?: string }) => e.code === "DASK_ERR_CONFIG");
    await dup.close();
    const one = new Executor({ nthreads: 1, modules: [join(dir, "tasks.js")], allowSource: false });
    assert.equal(ok(await one.run({ key: "y", fn: { kind: "js", ref: "tasks.js#y" }, args: [], kwargs: {} })), 2, "run() starts the pool itself");
    assert.equal(err(await one.run({ key: "x", fn: { kind: "js", ref: "tasks.js#x" }, args: [], kwargs: {} })).code, "DASK_ERR_UNKNOWN_FUNCTION");
    await one.close();
  });

  test("options are validated once, naming the option", () => {
    assert.throws(() => new Executor({ nthreads: 0, modules: [], allowSource: false }), /options\.nthreads/);
  });
});
