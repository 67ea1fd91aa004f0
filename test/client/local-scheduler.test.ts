// The single-machine schedulers (sync, threads, processes) over {key: task} graphs: the same
// graph gives the same values on each; shared nodes run once; failures carry the task's error and
// key; retries; threads and processes really run elsewhere (and in parallel for threads).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { executionOrder, getProcesses, getSync, getThreads, localGet } from "../../src/client/local-scheduler.ts";
import type { LocalGraph, LocalOptions, LocalSchedulerName, LocalTask } from "../../src/client/local-scheduler.ts";
import { isTuple, tuple } from "../../src/protocol/values.ts";

const FIXTURE = fileURLToPath(new URL("./local-scheduler-tasks.js", import.meta.url));
const EXAMPLES = fileURLToPath(new URL("../../examples/tasks.js", import.meta.url));
const T = "local-scheduler-tasks.js#";
const SCHEDULERS: LocalSchedulerName[] = ["sync", "threads", "processes"];
const OPTS: LocalOptions = { modules: [FIXTURE], numWorkers: 2 };

function graph(tasks: Record<string, LocalTask>, keys: string[], extra: Partial<LocalGraph> = {}): LocalGraph {
  return { tasks: new Map(Object.entries(tasks)), keys, ...extra };
}

function t(fn: string, args: unknown[], deps: string[] = [], kwargs?: Record<string, unknown>): LocalTask {
  return kwargs ? { fn: T + fn, args, deps, kwargs } : { fn: T + fn, args, deps };
}

/** a = 1 + 2; x = a + 3; y = a + 1; result = x * y */
const CLASSIC = graph({ a: t("add", [1, 2]), x: t("add", ["a", 3], ["a"]), y: t("inc", ["a"], ["a"]), result: t("mul", ["x", "y"], ["x", "y"]) }, ["result"]);

function tmp(): { dir: string; path: (n: string) => string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "dask-wasm-local-"));
  return { dir, path: (n) => join(dir, n), done: () => rmSync(dir, { recursive: true, force: true }) };
}

test("executionOrder: dependencies first, only what the keys need, each task once", () => {
  const g = graph({ a: t("add", [1, 2]), b: t("inc", ["a"], ["a"]), c: t("inc", ["a"], ["a"]), d: t("add", ["b", "c"], ["b", "c"]), unused: t("inc", [0]) }, ["d"]);
  const order = executionOrder(g);
  assert.deepEqual([...order].sort(), ["a", "b", "c", "d"]);
  for (const [key, task] of g.tasks) {
    if (!order.includes(key)) continue;
    for (const dep of task.deps) assert.ok(order.indexOf(dep) < order.indexOf(key), `${dep} before ${key}`);
  }
});

test("executionOrder: a missing key, a missing dependency and a cycle are coded config errors", () => {
  assert.throws(() => executionOrder(graph({ a: t("inc", [1]) }, ["nope"])), { code: "DASK_ERR_CONFIG", message: /nope/ });
  assert.throws(() => executionOrder(graph({ a: t("inc", ["b"], ["b"]) }, ["a"])), { code: "DASK_ERR_CONFIG", message: /depends on b/ });
  assert.throws(() => executionOrder(graph({ a: t("inc", ["b"], ["b"]), b: t("inc", ["a"], ["a"]) }, ["a"])), { code: "DASK_ERR_CONFIG", message: /cycle/ });
});

test("executionOrder: a 100k-long chain does not overflow the stack", () => {
  const tasks: Record<string, LocalTask> = { k0: t("inc", [0]) };
  for (let i = 1; i < 100_000; i++) tasks[`k${i}`] = t("inc", [`k${i - 1}`], [`k${i - 1}`]);
  const order = executionOrder(graph(tasks, ["k99999"]));
  assert.equal(order.length, 100_000);
  assert.equal(order[0], "k0");
});

for (const name of SCHEDULERS) {
  test(`${name}: the classic example gives 24`, async () => {
    const out = await localGet(name, CLASSIC, OPTS);
    assert.deepEqual([...out], [["result", 24]]);
  });

  test(`${name}: a node two tasks depend on runs once; kwargs and async functions`, async () => {
    const tm = tmp();
    try {
      const log = tm.path("runs");
      const g = graph(
        {
          shared: t("record", [log, "shared", 5]),
          l: t("later", ["shared"], ["shared"]),
          r: t("inc", ["shared"], ["shared"]),
          kw: t("withKw", ["shared"], ["shared"], { sep: "shared" }),
          both: t("add", ["l", "r"], ["l", "r"]),
        },
        ["both", "kw"],
      );
      const out = await localGet(name, g, OPTS);
      assert.equal(out.get("both"), 5 * 10 + 6);
      // kwargs values are substituted too, as pack_data does for dict values.
      assert.equal(out.get("kw"), "5:5");
      assert.deepEqual(readFileSync(log, "utf8").split("\n").filter(Boolean), ["shared"]);
    } finally {
      tm.done();
    }
  });

  test(`${name}: a failing task rejects with its own error type, message and key`, async () => {
    const g = graph({ a: t("inc", [1]), bad: t("fail", ["boom"], ["a"]), top: t("inc", ["bad"], ["bad"]) }, ["top"]);
    await assert.rejects(localGet(name, g, OPTS), (e: Error & { key?: string }) => {
      assert.equal(e.name, "TypeError");
      assert.equal(e.message, "boom");
      assert.equal(e.key, "bad");
      return true;
    });
  });

  test(`${name}: retries: 2 returns the value of a task that fails twice; retries: 1 does not`, async () => {
    const tm = tmp();
    try {
      const g = (p: string): LocalGraph => graph({ f: t("flaky", [p, 2, "ok"]) }, ["f"]);
      const out = await localGet(name, g(tm.path("c1")), { ...OPTS, retries: 2 });
      assert.equal(out.get("f"), "ok");
      assert.equal(readFileSync(tm.path("c1"), "utf8"), "3");
      await assert.rejects(localGet(name, g(tm.path("c2")), { ...OPTS, retries: 1 }), { name: "RangeError", message: "flaky failure 2 of 2" });
      // The graph's own retries count too (GraphSpec.retries).
      const out2 = await localGet(name, { ...g(tm.path("c3")), retries: 2 }, OPTS);
      assert.equal(out2.get("f"), "ok");
    } finally {
      tm.done();
    }
  });

  test(`${name}: an unknown export fails with DASK_ERR_UNKNOWN_FUNCTION`, async () => {
    await assert.rejects(localGet(name, graph({ a: t("nope", []) }, ["a"]), OPTS), { code: "DASK_ERR_UNKNOWN_FUNCTION" });
  });

  test(`${name}: tuples keep their mark and typed arrays their type`, async () => {
    const g = graph({ a: t("echo", [tuple<unknown>(1, "x")]), b: t("echo", [new Float64Array([1.5, 2])]) }, ["a", "b"]);
    const out = await localGet(name, g, OPTS);
    assert.ok(isTuple(out.get("a")));
    assert.deepEqual([...(out.get("a") as unknown[])], [1, "x"]);
    assert.ok(out.get("b") instanceof Float64Array);
  });
}

test("sync runs in this thread and accepts JS functions and options.functions", async () => {
  const seen: number[] = [];
  const record = (x: number): number => (seen.push(threadId), x * 2);
  const g: LocalGraph = { tasks: new Map<string, LocalTask>([["a", { fn: record, args: [4], deps: [] }], ["b", { fn: "mine#sq", args: ["a"], deps: ["a"] }]]), keys: ["b"] };
  const out = await getSync(g, { functions: { "mine#sq": (x: number) => x * x } });
  assert.equal(out.get("b"), 64);
  assert.deepEqual(seen, [threadId]);
});

test("sync rethrows the task's own error object", async () => {
  const err = new Error("mine");
  const g: LocalGraph = { tasks: new Map<string, LocalTask>([["a", { fn: () => { throw err; }, args: [], deps: [] }]]), keys: ["a"] };
  await assert.rejects(getSync(g), (e) => e === err && (e as { key?: string }).key === "a");
});

test("threads and processes refuse JS function objects with a config error", async () => {
  const g: LocalGraph = { tasks: new Map<string, LocalTask>([["a", { fn: (x: number) => x, args: [1], deps: [] }]]), keys: ["a"] };
  await assert.rejects(getThreads(g, OPTS), { code: "DASK_ERR_CONFIG", message: /sync/ });
  await assert.rejects(getProcesses(g, OPTS), { code: "DASK_ERR_CONFIG", message: /sync/ });
  await assert.rejects(localGet("bogus" as LocalSchedulerName, g), { code: "DASK_ERR_CONFIG" });
});

test("threads: tasks run in worker threads, two at once (a 2-party barrier fills)", async () => {
  const barrier = new Int32Array(new SharedArrayBuffer(8));
  const S = "tasks.js#stamp";
  const g: LocalGraph = {
    tasks: new Map<string, LocalTask>([
      ["s1", { fn: S, args: [60_000, barrier, 2], deps: [] }],
      ["s2", { fn: S, args: [60_000, barrier, 2], deps: [] }],
      ["w", { fn: T + "where", args: [], deps: [] }],
    ]),
    keys: ["s1", "s2", "w"],
  };
  const out = await getThreads(g, { modules: [FIXTURE, EXAMPLES], numWorkers: 2 });
  assert.equal((out.get("s1") as { together: boolean }).together, true);
  assert.equal((out.get("s2") as { together: boolean }).together, true);
  const w = out.get("w") as { pid: number; threadId: number };
  assert.equal(w.pid, process.pid);
  assert.notEqual(w.threadId, threadId);
});

test("processes: tasks run in other processes, spread over numWorkers children", async () => {
  const tasks = new Map<string, LocalTask>();
  for (let i = 0; i < 8; i++) tasks.set(`w${i}`, { fn: T + "where", args: [i], deps: [] });
  const out = await getProcesses({ tasks, keys: [...tasks.keys()] }, { ...OPTS, numWorkers: 2 });
  const pids = new Set([...out.values()].map((v) => (v as { pid: number }).pid));
  assert.ok(!pids.has(process.pid));
  assert.ok(pids.size >= 1 && pids.size <= 2, `pids: ${[...pids].join(",")}`);
});

test("processes: a child that exits mid-task fails the task with DASK_ERR_CHILD_PROCESS; the next run works", async () => {
  await assert.rejects(getProcesses(graph({ a: t("exitProcess", [7]) }, ["a"]), OPTS), { code: "DASK_ERR_CHILD_PROCESS", message: /code 7/ });
  // With a retry the replacement child runs the task again (and dies again): still the coded error.
  await assert.rejects(getProcesses(graph({ a: t("exitProcess", [7]) }, ["a"]), { ...OPTS, retries: 1 }), { code: "DASK_ERR_CHILD_PROCESS" });
  const out = await getProcesses(CLASSIC, OPTS);
  assert.equal(out.get("result"), 24);
});

test("processes and threads: a module that does not load rejects with DASK_ERR_MODULE_LOAD", async () => {
  const missing = join(tmpdir(), "dask-wasm-no-such-module.js");
  await assert.rejects(getProcesses(CLASSIC, { modules: [missing], numWorkers: 1 }), { code: "DASK_ERR_MODULE_LOAD" });
  const out = getThreads(CLASSIC, { modules: [missing], numWorkers: 1 });
  await assert.rejects(out, { code: "DASK_ERR_MODULE_LOAD" });
});

test("retries must be a non-negative integer, numWorkers a positive one", async () => {
  await assert.rejects(getSync(CLASSIC, { ...OPTS, retries: -1 }), { code: "DASK_ERR_CONFIG" });
  await assert.rejects(getThreads(CLASSIC, { ...OPTS, numWorkers: 0 }), { code: "DASK_ERR_CONFIG" });
});

/** (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)) */
const WASM_ADD = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32, i32) -> i32
  0x03, 0x02, 0x01, 0x00, // function 0 has type 0
  0x07, 0x07, 0x01, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00, // export "add" = function 0
  0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b, // body
]);

for (const name of SCHEDULERS) {
  test(`${name}: Wasm exports run with the module bytes as a dependency; a bad ABI argument fails coded`, async () => {
    assert.ok(WebAssembly.validate(WASM_ADD));
    const g = graph(
      {
        mod: t("echo", [WASM_ADD]),
        a: { fn: "dask-wasm:wasm:add", args: ["mod", 40, 2], deps: ["mod"] },
        b: { fn: "dask-wasm:wasm:add", args: ["mod", "a", 100], deps: ["mod", "a"] },
      },
      ["b"],
    );
    const out = await localGet(name, g, OPTS);
    assert.equal(out.get("b"), 142);
    const bad = graph({ a: { fn: "dask-wasm:wasm:add", args: [WASM_ADD, "x", 1], deps: [] } }, ["a"]);
    await assert.rejects(localGet(name, bad, OPTS), { code: "DASK_ERR_WASM_ABI" });
  });

  test(`${name}: shipped source is refused before anything runs`, async () => {
    const g = graph({ a: { fn: "dask-wasm:source:(x) => x", args: [1], deps: [] } }, ["a"]);
    await assert.rejects(localGet(name, g, OPTS), { code: "DASK_ERR_CONFIG", message: /shipped source/ });
  });
}

test("an empty key list resolves to an empty map on every scheduler", async () => {
  for (const name of SCHEDULERS) assert.deepEqual([...(await localGet(name, graph({ a: t("inc", [1]) }, []), OPTS))], []);
});

test("processes: numWorkers 1 runs every task in the same child", async () => {
  const out = await getProcesses(graph({ a: t("where", []), b: t("where", []) }, ["a", "b"]), { ...OPTS, numWorkers: 1 });
  assert.equal((out.get("a") as { pid: number }).pid, (out.get("b") as { pid: number }).pid);
});
