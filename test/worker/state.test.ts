// WorkerState tests ported by name from distributed 2022.12.1 tests/test_worker_state_machine.py
// (and, for the pure `ws` tests, test_cancelled_state.py, test_resources.py, test_steal.py,
// test_reschedule.py, test_worker_memory.py). Where Python only has a gen_cluster (live cluster)
// test for a behaviour, the name is kept with " (state)" and the cluster steps are replaced by the
// events the real worker would have received.
//
// Differences from Python, on purpose: no DigestMetric instructions (the shell measures), so
// Python's expected lists lose those entries; GatherDep.to_gather is an array in priority order
// instead of a set (assertInstructions compares it as a set, as Python does); actors are not
// modelled.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AcquireReplicasEvent, CancelComputeEvent, ComputeTaskEvent, ExecuteFailureEvent, ExecuteSuccessEvent, FindMissingEvent,
  FreeKeysEvent, GatherDepBusyEvent, GatherDepFailureEvent, GatherDepNetworkFailureEvent, GatherDepSuccessEvent,
  PauseEvent, RefreshWhoHasEvent, RemoveReplicasEvent, RescheduleEvent, RetryBusyWorkerEvent, SecedeEvent,
  StealRequestEvent, UnpauseEvent, UpdateDataEvent,
} from "../../src/worker/events.ts";
import {
  AddKeysMsg, Execute, GatherDep, LongRunningMsg, ReleaseWorkerDataMsg, RequestRefreshWhoHasMsg, RescheduleMsg,
  RetryBusyWorkerLater, StealResponseMsg, TaskErredMsg, TaskFinishedMsg,
} from "../../src/worker/instructions.ts";
import { defaultSizeof, WorkerState } from "../../src/worker/state.ts";
import { HeapSet, InvalidTaskState, TaskState, TransitionCounterMaxExceeded } from "../../src/worker/task-state.ts";
import { mergeRecsInstructions, RecommendationsConflict } from "../../src/worker/transitions.ts";
import { tuple, type Key } from "../../src/protocol/values.ts";
import { assertInstructions, assertStory, makeWs, runningTaskTest, WS2, WS3, wsTest } from "./helpers.ts";

const DONE_EVENTS = {
  ExecuteSuccessEvent: (key: string, stimulus_id: string) => ExecuteSuccessEvent.dummy(key, null, { stimulus_id }),
  ExecuteFailureEvent: (key: string, stimulus_id: string) => ExecuteFailureEvent.dummy(key, { stimulus_id }),
  RescheduleEvent: (key: string, stimulus_id: string) => RescheduleEvent.dummy(key, { stimulus_id }),
} as const;
const doneCases = Object.entries(DONE_EVENTS);

// ---- building blocks ---------------------------------------------------------------------------

describe("test_worker_state_machine: building blocks", () => {
  test("test_instruction_match", () => {
    const i = new ReleaseWorkerDataMsg({ key: "x", stimulus_id: "s1" });
    assertInstructions([i], [new ReleaseWorkerDataMsg({ key: "x", stimulus_id: "s1" })]);
    assert.ok(!ReleaseWorkerDataMsg.match({ key: "y" }).matches(i));
    assert.ok(ReleaseWorkerDataMsg.match({ key: "x" }).matches(i));
    assert.ok(ReleaseWorkerDataMsg.match({ stimulus_id: "s1" }).matches(i));
    assert.ok(!ReleaseWorkerDataMsg.match({ stimulus_id: "s2" }).matches(i));
    assert.ok(!RescheduleMsg.match({ key: "x" }).matches(i));
    assert.ok(!RescheduleMsg.match({ key: "x" }).matches(new ReleaseWorkerDataMsg({ key: "x", stimulus_id: "s1" })));
  });

  test("test_TaskState_get_nbytes", () => {
    const x = new TaskState("x");
    x.nbytes = 123;
    assert.equal(x.getNbytes(), 123);
    // distributed.scheduler.default-data-size
    assert.equal(new TaskState("y").getNbytes(), 1024);
  });

  test("test_TaskState_eq", () => {
    const a = new TaskState("x");
    const b = new TaskState("x");
    assert.notEqual(a, b);
    assert.equal(new Set([a, b]).size, 2);
  });

  test("test_TaskState_repr", () => {
    const ts = new TaskState("x");
    assert.equal(String(ts), '<TaskState "x" released>');
    ts.state = "cancelled";
    ts.previous = "flight";
    assert.equal(String(ts), '<TaskState "x" cancelled(flight)>');
    ts.state = "resumed";
    ts.next = "waiting";
    assert.equal(String(ts), '<TaskState "x" resumed(flight->waiting)>');
  });

  test("test_sendmsg_to_dict", () => {
    assert.deepEqual(new ReleaseWorkerDataMsg({ key: "x", stimulus_id: "test" }).toWire(), { op: "release-worker-data", key: "x", stimulus_id: "test" });
  });

  test("test_merge_recs_instructions", () => {
    const x = new TaskState("x");
    const y = new TaskState("y");
    const instr1 = new RescheduleMsg({ key: "foo", stimulus_id: "test" });
    const instr2 = new RescheduleMsg({ key: "bar", stimulus_id: "test" });
    assert.deepEqual(
      mergeRecsInstructions([new Map([[x, "memory"]]), [instr1]], [new Map([[y, "released"]]), [instr2]]),
      [new Map([[x, "memory"], [y, "released"]]), [instr1, instr2]],
    );
    // Identical recommendations are silently ignored; incompatible ones raise.
    assert.deepEqual(mergeRecsInstructions([new Map([[x, "memory"]]), []], [new Map([[x, "memory"]]), []]), [new Map([[x, "memory"]]), []]);
    assert.throws(() => mergeRecsInstructions([new Map([[x, "memory"]]), []], [new Map([[x, "released"]]), []]), RecommendationsConflict);
  });

  test("test_computetask_dummy", () => {
    const ev = ComputeTaskEvent.dummy("x", { who_has: { y: ["w1"] }, stimulus_id: "s" });
    assert.equal(ev.key, "x");
    assert.deepEqual(ev.who_has, new Map([["y", ["w1"]]]));
    assert.deepEqual(ev.nbytes, new Map([["y", 1]]));
    assert.deepEqual(ev.priority, [0]);
    assert.equal(ev.duration, 1.0);
    assert.deepEqual(ev.run_spec, { task: null });
    assert.deepEqual(ev.resource_restrictions, {});
    assert.equal(ev.actor, false);
    assert.deepEqual(ev.annotations, {});
    assert.equal(ev.run_id, null);
  });

  test("test_executesuccess_dummy / test_executefailure_dummy", () => {
    const s = ExecuteSuccessEvent.dummy("x", 123, { stimulus_id: "s" });
    assert.deepEqual([s.key, s.value, s.start, s.stop, s.nbytes, s.type], ["x", 123, 0.0, 1.0, 1, null]);
    const f = ExecuteFailureEvent.dummy("x", { stimulus_id: "s" });
    assert.deepEqual([f.key, f.start, f.stop, f.exception_text], ["x", null, null, ""]);
    const e = ExecuteFailureEvent.fromError(new RangeError("boom"), { key: "x", start: 1, stop: 2, stimulus_id: "s" });
    assert.equal(e.exception, "RangeError: boom");
    assert.equal(e.exception_text, "RangeError: boom");
    assert.match(e.traceback_text, /boom/);
  });

  test("HeapSet pops by priority, then insertion order, and survives discard + re-add", () => {
    const h = new HeapSet();
    const mk = (k: string, p: number[]): TaskState => Object.assign(new TaskState(k), { priority: p });
    const a = mk("a", [1]);
    const b = mk("b", [0, 5]);
    const c = mk("c", [0, 5]);
    const d = mk("d", [2]);
    for (const t of [a, b, c, d]) h.add(t);
    h.discard(c);
    d.priority = [-1];
    h.discard(d);
    h.add(d); // re-added with a new priority: the stale entry must not be used
    h.add(c);
    assert.deepEqual(h.sorted().map((t) => t.key), ["d", "b", "c", "a"]);
    const popped: string[] = [];
    while (h.size > 0) popped.push(h.pop().key as string);
    assert.deepEqual(popped, ["d", "b", "c", "a"]);
  });

  test("WorkerState options are validated once, naming the option", () => {
    assert.throws(() => new WorkerState({ nthreads: 0 }), /options\.nthreads must be/);
    assert.throws(() => new WorkerState({ resources: { R: -1 } }), /options\.resources\.R must be/);
    assert.throws(() => new WorkerState({ transferIncomingBytesLimit: Number.NaN }), /options\.transferIncomingBytesLimit/);
  });
});

// ---- compute -----------------------------------------------------------------------------------

describe("compute", () => {
  // test_utils_test.py::test_ws_with_running_task checks the fixture itself.
  runningTaskTest("test_ws_with_running_task", (ws, state) => {
    const ts = ws.task("x")!;
    assert.equal(ts.state, state);
    assert.deepEqual(ws.availableResources, { R: 0 });
    if (state === "executing") {
      assert.ok(ws.executing.has(ts) && !ws.longRunning.has(ts));
    } else {
      assert.ok(!ws.executing.has(ts) && ws.longRunning.has(ts));
    }
  });

  wsTest("test_execute_success: compute-task -> Execute -> ExecuteSuccess -> TaskFinishedMsg", (ws) => {
    let instructions = ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }));
    assertInstructions(instructions, [new Execute({ key: "x", stimulus_id: "s1" })]);
    assert.equal(ws.task("x")!.state, "executing");
    instructions = ws.handleStimulus(
      new ExecuteSuccessEvent({ key: "x", value: 42, start: 10, stop: 11.5, nbytes: 8, typename: "number", stimulus_id: "s2" }),
    );
    assertInstructions(instructions, [
      new TaskFinishedMsg({
        key: "x", nbytes: 8, type: new Uint8Array(0), typename: "number", metadata: {}, thread: null,
        startstops: [{ action: "compute", start: 10, stop: 11.5 }], stimulus_id: "s2",
      }),
    ]);
    assert.equal(ws.task("x")!.state, "memory");
    assert.equal(ws.data.get("x"), 42);
    assert.equal(ws.nbytes, 8);
    assert.equal(ws.executedCount, 1);
    assert.deepEqual(instructions[0]!.constructor === TaskFinishedMsg && (instructions[0] as TaskFinishedMsg).toWire(), {
      key: "x", nbytes: 8, type: new Uint8Array(0), typename: "number", metadata: {}, thread: null,
      startstops: [{ action: "compute", start: 10, stop: 11.5 }], op: "task-finished", stimulus_id: "s2", status: "OK",
    });
  });

  wsTest("test_execute_failure: ExecuteFailureEvent -> TaskErredMsg, and a repeated compute-task repeats it", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }));
    const err = ExecuteFailureEvent.fromError(new TypeError("bad input"), { key: "x", start: 1, stop: 2, stimulus_id: "s2" });
    const instructions = ws.handleStimulus(err);
    assertInstructions(instructions, [
      TaskErredMsg.match({ key: "x", exception: "TypeError: bad input", exception_text: "TypeError: bad input", stimulus_id: "s2", startstops: [{ action: "compute", start: 1, stop: 2 }] }),
    ]);
    assert.equal(ws.task("x")!.state, "error");
    const wire = (instructions[0] as TaskErredMsg).toWire();
    assert.equal(wire.op, "task-erred");
    assert.equal(wire.status, "error");
    assert.ok(!("run_id" in wire));
    // The scheduler asks again (e.g. after reconnecting): the same error is reported again.
    assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s3" })), [TaskErredMsg.match({ key: "x", stimulus_id: "s3" })]);
    // free-keys of an erred task forgets it.
    ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s4" }));
    assert.equal(ws.task("x"), undefined);
  });

  wsTest("test_compute_task_nthreads: only nthreads tasks execute; the next starts when one ends", (ws) => {
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("a", { priority: [2], stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("b", { priority: [1], stimulus_id: "s2" }),
      ComputeTaskEvent.dummy("c", { priority: [0], stimulus_id: "s3" }),
      ComputeTaskEvent.dummy("d", { priority: [3], stimulus_id: "s4" }),
    );
    assertInstructions(instructions, [new Execute({ key: "a", stimulus_id: "s1" }), new Execute({ key: "b", stimulus_id: "s2" })]);
    assert.equal(ws.executingCount, 2);
    // Highest priority (lowest tuple) of the ready ones goes next.
    assertInstructions(ws.handleStimulus(ExecuteSuccessEvent.dummy("a", 1, { stimulus_id: "s5" })), [
      TaskFinishedMsg.match({ key: "a" }),
      new Execute({ key: "c", stimulus_id: "s5" }),
    ]);
    assert.deepEqual(ws.ready.sorted().map((t) => t.key), ["d"]);
  }, { nthreads: 2 });

  wsTest("test_pause_unpause: paused workers start nothing; unpause starts the queue", (ws) => {
    ws.handleStimulus(new PauseEvent({ stimulus_id: "p" }));
    assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }), ComputeTaskEvent.dummy("z", { who_has: { y: [WS2] }, stimulus_id: "s2" })), []);
    assert.equal(ws.task("x")!.state, "ready");
    assert.equal(ws.task("y")!.state, "fetch");
    assertInstructions(ws.handleStimulus(new UnpauseEvent({ stimulus_id: "u" })), [
      new Execute({ key: "x", stimulus_id: "u" }),
      new GatherDep({ worker: WS2, to_gather: ["y"], total_nbytes: 1, stimulus_id: "u" }),
    ]);
  });
});

// ---- fetching dependencies ---------------------------------------------------------------------

describe("dependency fetch", () => {
  wsTest("test_fetch_to_compute (state): one dependency from one peer, then compute", (ws) => {
    let instructions = ws.handleStimulus(ComputeTaskEvent.dummy("f2", { who_has: { f1: [WS2] }, nbytes: { f1: 28 }, stimulus_id: "s1" }));
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["f1"], total_nbytes: 28, stimulus_id: "s1" })]);
    assert.equal(ws.task("f1")!.state, "flight");
    assert.equal(ws.task("f2")!.state, "waiting");
    instructions = ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { f1: 2 }, total_nbytes: 28, stimulus_id: "s2" }));
    assertInstructions(instructions, [new AddKeysMsg({ keys: ["f1"], stimulus_id: "s2" }), new Execute({ key: "f2", stimulus_id: "s2" })]);
    assert.equal(ws.task("f1")!.nbytes, 28);
    assertStory(ws.story("f1", "f2"), [
      ["f2", "compute-task", "released"],
      ["f1", "ensure-task-exists", "released"],
      // A transition is logged when it returns, so f2's comes before the f1 it recommended.
      ["f2", "released", "waiting", "waiting", { f1: "fetch" }],
      ["f1", "released", "fetch", "fetch", {}],
      ["gather-dependencies", WS2, new Set(["f1"])],
      ["f1", "fetch", "flight", "flight", {}],
      ["f1", "put-in-memory"],
      ["f1", "flight", "memory", "memory", { f2: "ready" }],
      ["f2", "waiting", "ready", "ready", { f2: "executing" }],
      ["f2", "ready", "executing", "executing", {}],
    ]);
  });

  wsTest("test_fetch_via_amm_to_compute (state)", (ws) => {
    ws.handleStimulus(new PauseEvent({ stimulus_id: "freeze" }));
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { f1: [WS2] }, nbytes: { f1: 1 }, stimulus_id: "test" }));
    assert.equal(ws.task("f1")!.state, "fetch");
    // The holder dies; the scheduler recomputes f1 here.
    ws.handleStimulus(ComputeTaskEvent.dummy("f1", { stimulus_id: "s2" }));
    ws.handleStimulus(new UnpauseEvent({ stimulus_id: "s3" }));
    ws.handleStimulus(ExecuteSuccessEvent.dummy("f1", 2, { stimulus_id: "s4" }));
    assertStory(ws.story("f1"), [
      ["f1", "ensure-task-exists", "released"],
      ["f1", "released", "fetch", "fetch", {}],
      ["f1", "compute-task", "fetch"],
      ["f1", "put-in-memory"],
    ]);
    assert.equal(ws.task("f1")!.state, "memory");
  });

  wsTest("test_compute_task_on_fetch_task_with_new_dependency (random-walk regression; Python 2022.12.1 raises)", (ws) => {
    // acquire-replicas k2, then the holder is lost and the scheduler computes k2 here, which
    // needs k0: fetch -> released -> waiting must not conflict on k0's recommendation.
    ws.handleStimulus(new PauseEvent({ stimulus_id: "p" }), new AcquireReplicasEvent({ who_has: { k2: [WS2] }, nbytes: { k2: 1 }, stimulus_id: "a" }));
    assert.equal(ws.task("k2")!.state, "fetch");
    assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("k2", { who_has: { k0: [WS2] }, stimulus_id: "c" })), []);
    assert.equal(ws.task("k2")!.state, "waiting");
    assert.equal(ws.task("k0")!.state, "fetch");
    assertInstructions(ws.handleStimulus(new UnpauseEvent({ stimulus_id: "u" })), [new GatherDep({ worker: WS2, to_gather: ["k0"], total_nbytes: 1, stimulus_id: "u" })]);
  });

  test("test_aggregate_gather_deps", async (t) => {
    for (const nRemoteWorkers of [1, 2]) {
      for (const [nbytes, nInFlightPerWorker] of [[10e6, 3], [20e6, 2], [30e6, 1], [60e6, 1]] as const) {
        await t.test(`[${nbytes}-${nInFlightPerWorker}-${nRemoteWorkers}]`, () => {
          const ws = makeWs({ transferMessageBytesLimit: 50e6 });
          const wss = Array.from({ length: nRemoteWorkers }, (_, i) => `127.0.0.1:${2 + i}`);
          const whoHas: Record<string, string[]> = {};
          for (let i = 0; i < 3 * nRemoteWorkers; i++) whoHas[`x${i}`] = [wss[Math.floor(i / 3)]!];
          const instructions = ws.handleStimulus(
            new AcquireReplicasEvent({ who_has: whoHas, nbytes: Object.fromEntries(Object.keys(whoHas).map((k) => [k, nbytes])), stimulus_id: "s1" }),
          );
          assertInstructions(instructions, wss.map((w) => GatherDep.match({ worker: w, stimulus_id: "s1" })));
          assert.ok(instructions.every((i) => (i as GatherDep).to_gather.length === nInFlightPerWorker));
          assert.equal(ws.inFlightTasks.size, nInFlightPerWorker * nRemoteWorkers);
          assert.equal(ws.transferIncomingBytes, nbytes * nInFlightPerWorker * nRemoteWorkers);
          assert.equal(ws.transferIncomingCount, nRemoteWorkers);
          assert.equal(ws.transferIncomingCountTotal, nRemoteWorkers);
          ws.validateState();
        });
      }
    }
  });

  wsTest("test_gather_priority", (ws) => {
    const MB4 = 4 * 2 ** 20;
    const instructions = ws.handleStimulus(
      new PauseEvent({ stimulus_id: "pause" }),
      // Tasks fetched by acquire-replicas always have priority [1].
      new AcquireReplicasEvent({
        who_has: {
          x1: ["127.0.0.2:1", "127.0.0.1:2"], // remote + local
          x2: ["127.0.0.2:1"], // after x1 is taken from .1, .2 has fewer tasks than .3
          x3: ["127.0.0.3:1"],
          x4: ["127.0.0.3:1"],
          x5: ["127.0.0.4:1"], // random choice between .2, .4, .5, .6
          x6: ["127.0.0.5:1"],
          x7: ["127.0.0.6:1"],
          x8: ["127.0.0.7:1"], // fetched first: same worker as y
        },
        nbytes: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`x${i + 1}`, MB4])),
        stimulus_id: "compute1",
      }),
      // A higher-priority task, even if scheduled later, is fetched first.
      ComputeTaskEvent.dummy("z", { who_has: { y: ["127.0.0.7:1"] }, priority: [0], stimulus_id: "compute2" }),
      new UnpauseEvent({ stimulus_id: "unpause" }),
    );
    assertInstructions(instructions, [
      // Highest priority first; lower-priority tasks from the same peer share the message.
      new GatherDep({ stimulus_id: "unpause", worker: "127.0.0.7:1", to_gather: ["y", "x8"], total_nbytes: 1 + MB4 }),
      // Then local peers.
      new GatherDep({ stimulus_id: "unpause", worker: "127.0.0.1:2", to_gather: ["x1"], total_nbytes: MB4 }),
      // Then remote peers with the most tasks.
      new GatherDep({ stimulus_id: "unpause", worker: "127.0.0.3:1", to_gather: ["x3", "x4"], total_nbytes: 2 * MB4 }),
      // Then a seeded-random remote peer (Python's pick differs: another generator).
      GatherDep.match({ stimulus_id: "unpause", total_nbytes: MB4 }),
    ]);
    const last = instructions[3] as GatherDep;
    const options: Record<string, string> = { "127.0.0.2:1": "x2", "127.0.0.4:1": "x5", "127.0.0.5:1": "x6", "127.0.0.6:1": "x7" };
    assert.deepEqual(last.to_gather, [options[last.worker]]);
    assert.equal(ws.transferIncomingBytes, 1 + MB4 + MB4 + 2 * MB4 + MB4);
    assert.equal(ws.transferIncomingCount, 4);
    assert.equal(ws.transferIncomingCountTotal, 4);
    // Determinism: the same stimuli on a fresh state give the same instructions.
  }, { transferIncomingCountLimit: 4 });

  wsTest("test_new_replica_while_all_workers_in_flight", (ws) => {
    const instructions = ws.handleStimulus(
      new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "s1" }),
      new AcquireReplicasEvent({ who_has: { y: [WS2] }, nbytes: { y: 1 }, stimulus_id: "s2" }),
      new AcquireReplicasEvent({ who_has: { y: [WS2, WS3] }, nbytes: { y: 1 }, stimulus_id: "s3" }),
    );
    assertInstructions(instructions, [
      new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s1" }),
      new GatherDep({ worker: WS3, to_gather: ["y"], total_nbytes: 1, stimulus_id: "s3" }),
    ]);
    assert.equal(ws.task("x")!.state, "flight");
    assert.equal(ws.task("y")!.state, "flight");
  });

  wsTest("test_transfer_incoming_metrics", (ws) => {
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [0, 0, 0]);
    ws.handleStimulus(ComputeTaskEvent.dummy("b", { who_has: { a: [WS2] }, nbytes: { a: 7 }, stimulus_id: "s1" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [7, 1, 1]);
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { a: 123 }, total_nbytes: 7, stimulus_id: "s2" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [0, 0, 1]);
    ws.handleStimulus(ComputeTaskEvent.dummy("e", { who_has: { c: [WS2], d: [WS2] }, nbytes: { c: 11, d: 13 }, stimulus_id: "s2" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [24, 1, 2]);
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { c: 123, d: 234 }, total_nbytes: 24, stimulus_id: "s3" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [0, 0, 2]);
    ws.handleStimulus(ComputeTaskEvent.dummy("h", { who_has: { f: [WS2], g: [WS3] }, nbytes: { f: 17, g: 19 }, stimulus_id: "s4" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [36, 2, 4]);
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS3, data: { g: 345 }, total_nbytes: 19, stimulus_id: "s5" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [17, 1, 4]);
    // The reply lacks f (and carries a key that was not asked for): f has no holder left.
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { g: 456 }, total_nbytes: 17, stimulus_id: "s6" }));
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [0, 0, 4]);
    assert.equal(ws.task("f")!.state, "missing");
  });

  wsTest("test_throttling_does_not_affect_first_transfer", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("c", { who_has: { a: [WS2] }, nbytes: { a: 200 }, stimulus_id: "s1" }));
    assert.equal(ws.task("a")!.state, "flight");
  }, { transferIncomingCountLimit: 100, transferIncomingBytesLimit: 100, transferIncomingBytesThrottleThreshold: 1, transferMessageBytesLimit: 100 });

  wsTest("test_message_target_does_not_affect_first_transfer_on_different_worker", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("c", { who_has: { a: [WS2], b: [WS3] }, nbytes: { a: 200, b: 200 }, stimulus_id: "s1" }));
    assert.equal(ws.task("a")!.state, "flight");
    assert.equal(ws.task("b")!.state, "flight");
  }, { transferIncomingCountLimit: 100, transferIncomingBytesLimit: 600, transferMessageBytesLimit: 100, transferIncomingBytesThrottleThreshold: 1 });

  const byState = (ws: WorkerState): Map<string, TaskState[]> => {
    const m = new Map<string, TaskState[]>();
    for (const ts of ws.tasks.values()) m.set(ts.state, [...(m.get(ts.state) ?? []), ts]);
    return m;
  };

  wsTest("test_throttle_incoming_transfers_on_count_limit", (ws) => {
    const whoHas: Record<string, string[]> = { a: [WS2], b: [WS3] };
    ws.handleStimulus(ComputeTaskEvent.dummy("c", { who_has: whoHas, nbytes: { a: 100, b: 100 }, stimulus_id: "s1" }));
    const tbs = byState(ws);
    assert.equal(tbs.get("flight")!.length, 1);
    assert.equal(tbs.get("fetch")!.length, 1);
    assert.equal(ws.transferIncomingBytes, 100);
    const inFlight = tbs.get("flight")![0]!;
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: whoHas[inFlight.key as string]![0]!, data: { [inFlight.key as string]: 123 }, total_nbytes: 100, stimulus_id: "s2" }));
    assert.equal(inFlight.state, "memory");
    assert.equal(tbs.get("fetch")![0]!.state, "flight");
    assert.equal(ws.transferIncomingBytes, 100);
  }, { transferIncomingCountLimit: 1, transferIncomingBytesLimit: 100_000, transferIncomingBytesThrottleThreshold: 1 });

  wsTest("test_throttling_incoming_transfer_on_transfer_bytes_same_worker", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("d", { who_has: { a: [WS2], b: [WS2], c: [WS2] }, nbytes: { a: 100, b: 100, c: 100 }, stimulus_id: "s1" }));
    const tbs = byState(ws);
    assert.equal(ws.transferIncomingBytes, 200);
    assert.equal(tbs.get("flight")!.length, 2);
    assert.equal(tbs.get("fetch")!.length, 1);
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: Object.fromEntries(tbs.get("flight")!.map((ts) => [ts.key as string, 123])), total_nbytes: 200, stimulus_id: "s2" }));
    assert.ok(tbs.get("flight")!.every((ts) => ts.state === "memory"));
    assert.ok(tbs.get("fetch")!.every((ts) => ts.state === "flight"));
  }, { transferIncomingCountLimit: 100, transferIncomingBytesLimit: 250, transferIncomingBytesThrottleThreshold: 1 });

  wsTest("test_throttling_incoming_transfer_on_transfer_bytes_different_workers", (ws) => {
    const whoHas: Record<string, string[]> = { a: [WS2], b: [WS3] };
    ws.handleStimulus(ComputeTaskEvent.dummy("c", { who_has: whoHas, nbytes: { a: 100, b: 100 }, stimulus_id: "s1" }));
    const tbs = byState(ws);
    assert.equal(ws.transferIncomingBytes, 100);
    assert.equal(tbs.get("flight")!.length, 1);
    assert.equal(tbs.get("fetch")!.length, 1);
    const inFlight = tbs.get("flight")![0]!;
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: whoHas[inFlight.key as string]![0]!, data: { [inFlight.key as string]: 123 }, total_nbytes: 100, stimulus_id: "s2" }));
    assert.equal(inFlight.state, "memory");
    assert.equal(tbs.get("fetch")![0]!.state, "flight");
  }, { transferIncomingCountLimit: 100, transferIncomingBytesLimit: 150, transferIncomingBytesThrottleThreshold: 1 });

  wsTest("test_do_not_throttle_connections_while_below_threshold", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("b", { who_has: { a: [WS2] }, nbytes: { a: 1 }, stimulus_id: "s1" }));
    assert.equal(ws.task("a")!.state, "flight");
    ws.handleStimulus(ComputeTaskEvent.dummy("d", { who_has: { c: [WS3] }, nbytes: { c: 1 }, stimulus_id: "s2" }));
    assert.equal(ws.task("c")!.state, "flight");
    ws.handleStimulus(ComputeTaskEvent.dummy("f", { who_has: { e: ["127.0.0.1:4"] }, nbytes: { e: 100 }, stimulus_id: "s3" }));
    assert.equal(ws.task("e")!.state, "flight");
    assert.equal(ws.transferIncomingBytes, 102);
  }, { transferIncomingCountLimit: 1, transferIncomingBytesLimit: 200, transferIncomingBytesThrottleThreshold: 50 });

  wsTest("test_throttle_on_transfer_bytes_regardless_of_threshold", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("b", { who_has: { a: [WS2] }, nbytes: { a: 1 }, stimulus_id: "s1" }));
    assert.equal(ws.task("a")!.state, "flight");
    ws.handleStimulus(ComputeTaskEvent.dummy("d", { who_has: { c: [WS3] }, nbytes: { c: 100 }, stimulus_id: "s2" }));
    assert.equal(ws.task("c")!.state, "fetch");
    assert.equal(ws.transferIncomingBytes, 1);
  }, { transferIncomingCountLimit: 1, transferIncomingBytesLimit: 100, transferIncomingBytesThrottleThreshold: 50 });

  wsTest("test_fetch_count", (ws) => {
    assert.equal(ws.fetchCount, 0);
    // Saturate comms: released->fetch->flight
    ws.handleStimulus(
      new AcquireReplicasEvent({ who_has: { a: [WS2] }, nbytes: { a: 1 }, stimulus_id: "s1" }),
      new AcquireReplicasEvent({ who_has: { b: [WS2, WS3] }, nbytes: { b: 1 }, stimulus_id: "s2" }),
    );
    assert.equal(ws.task("b")!.comingFrom, WS3);
    assert.equal(ws.fetchCount, 0);
    // released->fetch; d is in two data_needed heaps
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { c: [WS2], d: [WS2, WS3] }, nbytes: { c: 1, d: 1 }, stimulus_id: "s3" }));
    assert.equal(ws.fetchCount, 2);
    // fetch->released
    ws.handleStimulus(new FreeKeysEvent({ keys: ["c", "d"], stimulus_id: "s4" }));
    assert.equal(ws.fetchCount, 0);
    // flight->missing
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: {}, total_nbytes: 0, stimulus_id: "s5" }));
    assert.equal(ws.task("a")!.state, "missing");
    assert.equal(ws.fetchCount, 0);
    assert.equal(ws.missingDepFlight.size, 1);
    // flight->fetch
    ws.handleStimulus(
      ComputeTaskEvent.dummy("clog", { who_has: { clog_dep: [WS2] }, priority: [-1], stimulus_id: "s6" }),
      new GatherDepSuccessEvent({ worker: WS3, data: {}, total_nbytes: 0, stimulus_id: "s7" }),
    );
    assert.equal(ws.task("b")!.state, "fetch");
    assert.equal(ws.fetchCount, 1);
    assert.equal(ws.missingDepFlight.size, 1);
  }, { transferIncomingCountLimit: 0 });

  wsTest("test_task_counts", (ws) => {
    assert.deepEqual(ws.taskCounts, { constrained: 0, executing: 0, fetch: 0, flight: 0, "long-running": 0, memory: 0, missing: 0, other: 0, ready: 0, waiting: 0 });
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }), ComputeTaskEvent.dummy("z", { who_has: { y: [WS2] }, stimulus_id: "s2" }));
    assert.deepEqual(ws.taskCounts, { constrained: 0, executing: 1, fetch: 0, flight: 1, "long-running": 0, memory: 0, missing: 0, other: 0, ready: 0, waiting: 1 });
  });

  wsTest("test_lose_replica_during_fetch (state) [as_deps=True]", (ws) => {
    ws.handleStimulus(new PauseEvent({ stimulus_id: "freeze" }));
    ws.handleStimulus(ComputeTaskEvent.dummy("y1", { who_has: { x: [WS2, WS3] }, stimulus_id: "s1" }));
    assert.deepEqual(ws.task("x")!.whoHas, new Set([WS2, WS3]));
    // WS2 died; the next compute-task carries the scheduler's updated who_has.
    ws.handleStimulus(ComputeTaskEvent.dummy("y2", { who_has: { x: [WS3] }, stimulus_id: "s2" }));
    assert.deepEqual(ws.task("x")!.whoHas, new Set([WS3]));
    assertInstructions(ws.handleStimulus(new UnpauseEvent({ stimulus_id: "s3" })), [new GatherDep({ worker: WS3, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s3" })]);
    assert.equal(ws.dataNeeded.get(WS2), undefined);
  });

  wsTest("test_lose_replica_during_fetch (state) [as_deps=False]", (ws) => {
    ws.handleStimulus(new PauseEvent({ stimulus_id: "freeze" }));
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2, WS3] }, nbytes: { x: 1 }, stimulus_id: "s1" }));
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS3] }, nbytes: { x: 1 }, stimulus_id: "s2" }));
    assertInstructions(ws.handleStimulus(new UnpauseEvent({ stimulus_id: "s3" })), [new GatherDep({ worker: WS3, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s3" })]);
  });

  wsTest("test_acquire_replicas (state): fetched, kept, announced with add-keys; already held keys are not fetched", (ws) => {
    ws.handleStimulus(new UpdateDataEvent({ data: { held: 1 }, report: false, stimulus_id: "s0" }));
    const instructions = ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2], held: [WS2] }, nbytes: { x: 5, held: 8 }, stimulus_id: "s1" }));
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 5, stimulus_id: "s1" })]);
    assert.deepEqual(ws.task("x")!.priority, [1]);
    assertInstructions(ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { x: "v" }, total_nbytes: 5, stimulus_id: "s2" })), [
      new AddKeysMsg({ keys: ["x"], stimulus_id: "s2" }),
    ]);
    assert.equal(ws.task("x")!.state, "memory");
    assert.equal(ws.nbytes, 5 + defaultSizeof(1));
  });
});

// ---- busy peers, network failure, missing ------------------------------------------------------

describe("busy peers and failures", () => {
  wsTest("test_gather_dep_one_worker_always_busy (state)", (ws) => {
    let instructions = ws.handleStimulus(ComputeTaskEvent.dummy("h", { who_has: { f: [WS2], g: [WS2] }, stimulus_id: "s1" }));
    // f and g are clustered into one request.
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["f", "g"], total_nbytes: 2, stimulus_id: "s1" })]);
    for (let round = 0; round < 3; round++) {
      instructions = ws.handleStimulus(new GatherDepBusyEvent({ worker: WS2, total_nbytes: 2, stimulus_id: `busy-${round}` }));
      // No other holder: back off, and ask the scheduler for more holders.
      assertInstructions(instructions, [
        new RetryBusyWorkerLater({ worker: WS2, stimulus_id: `busy-${round}` }),
        new RequestRefreshWhoHasMsg({ keys: ["f", "g"], stimulus_id: `busy-${round}` }),
      ]);
      assert.equal(ws.task("f")!.state, "fetch");
      assert.ok(ws.busyWorkers.has(WS2));
      assertInstructions(ws.handleStimulus(new RetryBusyWorkerEvent({ worker: WS2, stimulus_id: `retry-${round}` })), [
        new GatherDep({ worker: WS2, to_gather: ["f", "g"], total_nbytes: 2, stimulus_id: `retry-${round}` }),
      ]);
    }
    assert.equal(ws.task("h")!.state, "waiting");
    // Another worker gets the data; the scheduler tells us.
    ws.handleStimulus(new GatherDepBusyEvent({ worker: WS2, total_nbytes: 2, stimulus_id: "busy-last" }));
    instructions = ws.handleStimulus(new RefreshWhoHasEvent({ who_has: { f: [WS2, WS3], g: [WS2, WS3] }, stimulus_id: "refresh" }));
    assertInstructions(instructions, [new GatherDep({ worker: WS3, to_gather: ["f", "g"], total_nbytes: 2, stimulus_id: "refresh" })]);
    assertInstructions(ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS3, data: { f: 2, g: 3 }, total_nbytes: 2, stimulus_id: "s9" })), [
      AddKeysMsg.match({ stimulus_id: "s9" }),
      AddKeysMsg.match({ stimulus_id: "s9" }),
      new Execute({ key: "h", stimulus_id: "s9" }),
    ]);
  });

  wsTest("test_gather_dep_from_remote_workers_if_all_local_workers_are_busy (state)", (ws) => {
    const local = "127.0.0.1:2";
    const remote = "127.0.0.2:1";
    assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("g", { who_has: { f: [local, remote] }, stimulus_id: "s1" })), [
      new GatherDep({ worker: local, to_gather: ["f"], total_nbytes: 1, stimulus_id: "s1" }),
    ]);
    // The local holder is busy: the remote one is tried at once, no refresh needed.
    assertInstructions(ws.handleStimulus(new GatherDepBusyEvent({ worker: local, total_nbytes: 1, stimulus_id: "s2" })), [
      new RetryBusyWorkerLater({ worker: local, stimulus_id: "s2" }),
      new GatherDep({ worker: remote, to_gather: ["f"], total_nbytes: 1, stimulus_id: "s2" }),
    ]);
  });

  wsTest("test_fetch_to_missing_on_busy (state)", (ws) => {
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "test" }));
    ws.handleStimulus(new GatherDepBusyEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "busy" }));
    assert.equal(ws.task("x")!.state, "fetch");
    assert.ok(ws.busyWorkers.has(WS2));
    // The scheduler lost the holder: refresh-who-has says nobody has it.
    assertInstructions(ws.handleStimulus(new RefreshWhoHasEvent({ who_has: { x: [] }, stimulus_id: "refresh" })), []);
    assert.equal(ws.task("x")!.state, "missing");
    assertStory(ws.story("x"), [
      ["x", "ensure-task-exists", "released"],
      ["x", "released", "fetch", "fetch", {}],
      ["gather-dependencies", WS2, new Set(["x"])],
      ["x", "fetch", "flight", "flight", {}],
      ["x", "flight", "fetch", "fetch", {}],
      ["x", "fetch", "missing", "missing", {}],
    ]);
    // A periodic find-missing asks for it.
    assertInstructions(ws.handleStimulus(new FindMissingEvent({ stimulus_id: "find-missing" })), [new RequestRefreshWhoHasMsg({ keys: ["x"], stimulus_id: "find-missing" })]);
  });

  wsTest("test_fetch_to_missing_on_refresh_who_has (state)", (ws) => {
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2], y: [WS2] }, nbytes: { x: 1, y: 1 }, stimulus_id: "test1" }));
    ws.handleStimulus(new GatherDepBusyEvent({ worker: WS2, total_nbytes: 2, stimulus_id: "busy" }));
    assert.equal(ws.task("x")!.state, "fetch");
    assert.equal(ws.task("y")!.state, "fetch");
    ws.handleStimulus(new RefreshWhoHasEvent({ who_has: { x: [], y: [WS3] }, stimulus_id: "test2" }));
    assert.equal(ws.task("x")!.state, "missing");
    assert.equal(ws.task("y")!.state, "flight");
    assert.deepEqual(ws.task("y")!.whoHas, new Set([WS3]));
  });

  wsTest("test_fetch_to_missing_on_network_failure (state)", (ws) => {
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "test_x" }));
    assert.equal(ws.task("x")!.state, "flight");
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { y: [WS2] }, nbytes: { y: 1 }, stimulus_id: "test_y" }));
    assert.equal(ws.task("y")!.state, "fetch");
    assertInstructions(ws.handleStimulus(new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "fail" })), []);
    assert.equal(ws.task("x")!.state, "missing");
    assert.equal(ws.task("y")!.state, "missing");
    assert.equal(ws.hasWhat.get(WS2), undefined);
  });

  wsTest("test_network_failure_falls_back_to_other_holder (state)", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2, WS3] }, stimulus_id: "s1" }));
    const first = ws.task("x")!.comingFrom!;
    const other = first === WS2 ? WS3 : WS2;
    assertInstructions(ws.handleStimulus(new GatherDepNetworkFailureEvent({ worker: first, total_nbytes: 1, stimulus_id: "s2" })), [
      new GatherDep({ worker: other, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s2" }),
    ]);
    assert.deepEqual(ws.task("x")!.whoHas, new Set([other]));
  });

  wsTest("test_missing_to_waiting (state)", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }));
    ws.handleStimulus(new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "s2" }));
    assert.equal(ws.task("x")!.state, "missing");
    // The scheduler gives up on y and recomputes x here.
    assertInstructions(ws.handleStimulus(new FreeKeysEvent({ keys: ["y"], stimulus_id: "s3" }), ComputeTaskEvent.dummy("x", { stimulus_id: "s4" })), [
      new Execute({ key: "x", stimulus_id: "s4" }),
    ]);
  });

  wsTest("test_missing_handle_compute_dependency (state)", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("y1", { who_has: { x: [WS2] }, stimulus_id: "s1" }));
    ws.handleStimulus(new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "s2" }));
    assert.equal(ws.task("x")!.state, "missing");
    // A new dependent arrives with a fresh holder: missing -> fetch -> flight.
    assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("y2", { who_has: { x: [WS3] }, stimulus_id: "s3" })), [
      new GatherDep({ worker: WS3, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s3" }),
    ]);
  });

  wsTest("test_gather_dep_failure (GatherDepFailureEvent -> the task errs)", (ws) => {
    // Python marks its version xfail (dask/distributed#6705) because a dependent waiting on
    // an erred task breaks validation; here the dependent is freed first, as the scheduler
    // does when the dependency errs.
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "s1" }));
    const instructions = ws.handleStimulus(GatherDepFailureEvent.fromError(new Error("cannot decode"), { worker: WS2, total_nbytes: 1, stimulus_id: "s2" }));
    assertInstructions(instructions, [TaskErredMsg.match({ key: "x", stimulus_id: "s2", exception_text: "Error: cannot decode" })]);
    assert.equal(ws.task("x")!.state, "error");
    assert.deepEqual([ws.transferIncomingBytes, ws.transferIncomingCount, ws.transferIncomingCountTotal], [0, 0, 1]);
  });

  for (const outcome of ["busy", "network-failure"] as const) {
    wsTest(`test_scatter_while_in_flight_then_${outcome} keeps the scattered data (random-walk regression; Python 2022.12.1 drops it)`, (ws) => {
      ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2], z: [WS3] }, stimulus_id: "c" }));
      ws.handleStimulus(new UpdateDataEvent({ data: { x: 1 }, report: false, stimulus_id: "u" }));
      const ev = outcome === "busy" ? new GatherDepBusyEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "b" }) : new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "b" });
      const instructions = ws.handleStimulus(ev);
      assertInstructions(instructions, outcome === "busy" ? [new RetryBusyWorkerLater({ worker: WS2, stimulus_id: "b" })] : []);
      assert.equal(ws.task("x")!.state, "memory");
      assert.equal(ws.data.get("x"), 1);
      assert.equal(ws.task("y")!.state, "waiting"); // still waiting for z only
      assert.deepEqual([...ws.task("y")!.waitingForData].map((t) => t.key), ["z"]);
    });
  }

  wsTest("test_cancelled_flight_needed_again_by_new_dependent (random-walk regression; Python 2022.12.1 deadlocks)", (ws) => {
    const W4 = "127.0.0.2:1";
    ws.handleStimulus(new PauseEvent({ stimulus_id: "p" }), new AcquireReplicasEvent({ who_has: { k3: [WS2, WS3, W4] }, nbytes: { k3: 10 }, stimulus_id: "a1" }));
    ws.handleStimulus(ComputeTaskEvent.dummy("k2", { who_has: { k0: [WS2, WS3] }, stimulus_id: "c2" }));
    const [g] = ws.handleStimulus(new UnpauseEvent({ stimulus_id: "u" })) as GatherDep[];
    assert.deepEqual([...g!.to_gather].sort(), ["k0", "k3"]);
    // k3 is now computed here and needs k0 (from another holder); k2 is freed: k0 cancelled.
    ws.handleStimulus(ComputeTaskEvent.dummy("k3", { who_has: { k0: [W4], k1: [WS3] }, stimulus_id: "c4" }), new FreeKeysEvent({ keys: ["k2"], stimulus_id: "f" }));
    assert.equal(ws.task("k0")!.state, "cancelled");
    assert.equal(ws.task("k3")!.state, "resumed");
    // The transfer returns k0 only. k3 goes back to computing and waits for k0 and k1; Python
    // then released k0 and k3 waited forever. Here k0 is fetched again (the recommendation
    // that won in this batch was k3's "fetch", so the received copy is not kept).
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: g!.worker, data: { k0: 1 }, total_nbytes: g!.total_nbytes, stimulus_id: "g" }));
    assert.equal(ws.task("k3")!.state, "waiting");
    assert.equal(ws.task("k0")!.state, "flight");
    assert.equal(ws.task("k0")!.comingFrom, W4);
    assert.deepEqual([...ws.task("k3")!.waitingForData].map((t) => t.key).sort(), ["k0", "k1"]);
  });

  wsTest("test_missing_dependency_gets_holders_while_task_resumes (random-walk regression)", (ws) => {
    const W4 = "127.0.0.2:1";
    ws.handleStimulus(new AcquireReplicasEvent({ who_has: { k2: [WS3, W4] }, nbytes: { k2: 10 }, stimulus_id: "a" }));
    ws.handleStimulus(ComputeTaskEvent.dummy("k3", { who_has: { k0: [W4], k1: [WS3] }, stimulus_id: "c1" }));
    ws.handleStimulus(new GatherDepNetworkFailureEvent({ worker: W4, total_nbytes: 10, stimulus_id: "n" }));
    assert.equal(ws.task("k0")!.state, "missing");
    // k2 (in flight) is now computed here with k0 available elsewhere: k0 must leave missing.
    assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("k2", { who_has: { k0: [WS2, WS3] }, stimulus_id: "c3" })), [
      new GatherDep({ worker: WS2, to_gather: ["k0"], total_nbytes: 1, stimulus_id: "c3" }),
    ]);
    assert.equal(ws.task("k2")!.state, "resumed");
  });

  wsTest("test_forget_data_needed (state)", (ws) => {
    ws.handleStimulus(new PauseEvent({ stimulus_id: "freeze" }));
    ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }));
    ws.handleStimulus(new FreeKeysEvent({ keys: ["y"], stimulus_id: "s2" }));
    assert.equal(ws.tasks.size, 0);
    assert.equal(ws.dataNeeded.get(WS2)?.size ?? 0, 0);
    assertInstructions(ws.handleStimulus(new UnpauseEvent({ stimulus_id: "s3" })), []);
  });

  wsTest("test_in_memory_while_in_flight (state)", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }));
    // The data arrives by scatter (update_data) while the transfer is still running.
    assertInstructions(ws.handleStimulus(new UpdateDataEvent({ data: { x: 1 }, report: true, stimulus_id: "s2" })), [
      new AddKeysMsg({ keys: ["x"], stimulus_id: "s2" }), // report=true
      new AddKeysMsg({ keys: ["x"], stimulus_id: "s2" }), // flight -> memory
      new Execute({ key: "y", stimulus_id: "s2" }),
    ]);
    assert.equal(ws.task("x")!.state, "memory");
    // Still counted as in flight until the transfer reports back.
    assert.ok(ws.inFlightTasks.has(ws.task("x")!));
    // The transfer completes later: x is already in memory.
    assertInstructions(ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { x: 2 }, total_nbytes: 1, stimulus_id: "s3" })), []);
    assert.equal(ws.data.get("x"), 1);
  });
});

// ---- free-keys in every state ------------------------------------------------------------------

describe("free-keys", () => {
  const setups: Record<string, [(ws: WorkerState) => void, string, boolean]> = {
    // state reached by setup -> [setup, state after free-keys of x, x still known]
    fetch: [(ws) => { ws.handleStimulus(new PauseEvent({ stimulus_id: "p" }), new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "s" })); }, "forgotten", false],
    flight: [(ws) => { ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "s" })); }, "cancelled", true],
    missing: [(ws) => { ws.handleStimulus(new AcquireReplicasEvent({ who_has: { x: [WS2] }, nbytes: { x: 1 }, stimulus_id: "s" }), new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "f" })); }, "forgotten", false],
    waiting: [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("x", { who_has: { d: [WS2] }, stimulus_id: "s" })); }, "forgotten", false],
    ready: [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("clog", { stimulus_id: "c" }), ComputeTaskEvent.dummy("x", { stimulus_id: "s" })); }, "forgotten", false],
    constrained: [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("clog", { resource_restrictions: { R: 1 }, stimulus_id: "c" }), ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "s" })); }, "forgotten", false],
    executing: [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s" })); }, "cancelled", true],
    "long-running": [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s" }), new SecedeEvent({ key: "x", compute_duration: 1, stimulus_id: "sec" })); }, "cancelled", true],
    memory: [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s" }), ExecuteSuccessEvent.dummy("x", 1, { stimulus_id: "done" })); }, "forgotten", false],
    error: [(ws) => { ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s" }), ExecuteFailureEvent.dummy("x", { stimulus_id: "done" })); }, "forgotten", false],
  };
  for (const [state, [setup, after, known]] of Object.entries(setups)) {
    wsTest(`test_free_keys[${state}]`, (ws) => {
      setup(ws);
      const ts = ws.task("x")!;
      assert.equal(ts.state, state);
      const instructions = ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "free" }));
      // Only data held in memory is announced as released.
      assertInstructions(instructions, state === "memory" ? [new ReleaseWorkerDataMsg({ key: "x", stimulus_id: "free" })] : []);
      assert.equal(ts.state, after);
      assert.equal(ws.task("x") !== undefined, known);
      assert.equal(ws.data.has("x"), false);
    }, { resources: { R: 1 } });
  }

  wsTest("test_free_keys_unknown_key_is_a_noop", (ws) => {
    assertInstructions(ws.handleStimulus(new FreeKeysEvent({ keys: ["nope", tuple<Key>("t", 1)], stimulus_id: "s" })), []);
  });

  wsTest("test_free_keys_keeps_dependency_of_local_task", (ws) => {
    ws.handleStimulus(new UpdateDataEvent({ data: { x: 1 }, report: false, stimulus_id: "s1" }), ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }));
    ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s3" }));
    // released, but not forgotten: y still depends on it (the data itself is dropped).
    assert.equal(ws.task("x")!.state, "released");
  });
});

// ---- replicas ----------------------------------------------------------------------------------

describe("remove-replicas", () => {
  wsTest("test_remove_replicas_simple (state)", (ws) => {
    ws.handleStimulus(new UpdateDataEvent({ data: { x: 1, y: 2 }, report: false, stimulus_id: "s1" }));
    assertInstructions(ws.handleStimulus(new RemoveReplicasEvent({ keys: ["x"], stimulus_id: "s2" })), [new ReleaseWorkerDataMsg({ key: "x", stimulus_id: "s2" })]);
    assert.equal(ws.task("x"), undefined);
    assert.equal(ws.task("y")!.state, "memory");
  });

  wsTest("test_remove_replicas_while_computing (state): protected keys are rejected with add-keys", (ws) => {
    ws.handleStimulus(
      new UpdateDataEvent({ data: { x: 1, z: 3 }, report: false, stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("clog", { stimulus_id: "c" }),
      // y waits for a free thread; its dependency x must stay.
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }),
    );
    assert.equal(ws.task("y")!.state, "ready");
    const instructions = ws.handleStimulus(new RemoveReplicasEvent({ keys: ["x", "z", "unknown", "y"], stimulus_id: "s3" }));
    assertInstructions(instructions, [
      new AddKeysMsg({ keys: ["x"], stimulus_id: "s3" }),
      new ReleaseWorkerDataMsg({ key: "z", stimulus_id: "s3" }),
    ]);
    assert.equal(ws.task("x")!.state, "memory");
  });

  test("test_worker_nbytes", async (t) => {
    for (const state of ["executing", "long-running"] as const) {
      await t.test(`[${state}]`, () => {
        const ws = makeWs({ resources: { R: 1 } });
        ws.handleStimulus(ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "compute" }));
        if (state === "long-running") ws.handleStimulus(new SecedeEvent({ key: "x", compute_duration: 1, stimulus_id: "secede" }));
        assert.equal(ws.nbytes, 0);
        // executing->memory
        ws.handleStimulus(ExecuteSuccessEvent.dummy("x", null, { nbytes: 12, stimulus_id: "s1" }));
        assert.equal(ws.nbytes, 12);
        // flight->memory
        ws.handleStimulus(new AcquireReplicasEvent({ who_has: { y: [WS2] }, nbytes: { y: 13 }, stimulus_id: "s2" }));
        assert.equal(ws.nbytes, 12);
        ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { y: "foo" }, total_nbytes: 13, stimulus_id: "s3" }));
        assert.equal(ws.nbytes, 12 + 13);
        // released -> memory (scatter)
        ws.handleStimulus(new UpdateDataEvent({ data: { z: "bar" }, report: false, stimulus_id: "s3" }));
        assert.equal(ws.nbytes, 12 + 13 + defaultSizeof("bar"));
        // memory -> released by FreeKeysEvent
        ws.handleStimulus(new FreeKeysEvent({ keys: ["z"], stimulus_id: "s6" }));
        assert.equal(ws.nbytes, 12 + 13);
        // memory -> released by RemoveReplicasEvent
        ws.handleStimulus(new RemoveReplicasEvent({ keys: ["x", "y"], stimulus_id: "s7" }));
        assert.equal(ws.nbytes, 0);
        ws.validateState();
      });
    }
  });
});

// ---- stealing ----------------------------------------------------------------------------------

describe("steal", () => {
  runningTaskTest("test_steal_worker_state", (ws) => {
    ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }));
    assert.deepEqual(ws.availableResources, { R: 0 });
    assert.equal(ws.task("x")!.state, "cancelled");
    assertInstructions(ws.handleStimulus(ExecuteSuccessEvent.dummy("x", null, { stimulus_id: "s2" })), []);
    assert.equal(ws.task("x"), undefined);
    assert.ok(!ws.data.has("x"));
    assert.deepEqual(ws.availableResources, { R: 1 });
  });

  for (const [state, setup] of [
    ["ready", (ws: WorkerState) => ws.handleStimulus(ComputeTaskEvent.dummy("clog", { stimulus_id: "c" }), ComputeTaskEvent.dummy("x", { stimulus_id: "s" }))],
    ["waiting", (ws: WorkerState) => ws.handleStimulus(ComputeTaskEvent.dummy("x", { who_has: { d: [WS2] }, stimulus_id: "s" }))],
    ["constrained", (ws: WorkerState) => ws.handleStimulus(ComputeTaskEvent.dummy("clog", { resource_restrictions: { R: 1 }, stimulus_id: "c" }), ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "s" }))],
  ] as const) {
    wsTest(`test_steal_request_confirmed[${state}] (state of test_steal_when_more_tasks)`, (ws) => {
      setup(ws);
      assert.equal(ws.task("x")!.state, state);
      const instructions = ws.handleStimulus(new StealRequestEvent({ key: "x", stimulus_id: "steal-1" }));
      assertInstructions(instructions, [new StealResponseMsg({ key: "x", state, stimulus_id: "steal-1" })]);
      assert.deepEqual((instructions[0] as StealResponseMsg).toWire(), { key: "x", state, op: "steal-response", stimulus_id: "steal-1" });
      // The thief runs it: we forget it.
      assert.equal(ws.task("x"), undefined);
      assert.deepEqual(ws.availableResources, { R: state === "constrained" ? 0 : 1 });
    }, { resources: { R: 1 } });
  }

  runningTaskTest("test_dont_steal_executing_tasks (state)", (ws, state) => {
    assertInstructions(ws.handleStimulus(new StealRequestEvent({ key: "x", stimulus_id: "steal" })), [new StealResponseMsg({ key: "x", state, stimulus_id: "steal" })]);
    assert.equal(ws.task("x")!.state, state);
  });

  wsTest("test_steal_request_unknown_key answers null", (ws) => {
    assertInstructions(ws.handleStimulus(new StealRequestEvent({ key: "gone", stimulus_id: "steal" })), [new StealResponseMsg({ key: "gone", state: null, stimulus_id: "steal" })]);
  });

  wsTest("test_cancel_compute (state): only waiting/ready tasks are cancelled", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("a", { stimulus_id: "s1" }), ComputeTaskEvent.dummy("b", { stimulus_id: "s2" }));
    ws.handleStimulus(new CancelComputeEvent({ key: "a", stimulus_id: "c1" }), new CancelComputeEvent({ key: "b", stimulus_id: "c2" }));
    assert.equal(ws.task("a")!.state, "executing");
    assert.equal(ws.task("b"), undefined);
  });
});

// ---- cancelled and resumed ---------------------------------------------------------------------

describe("test_cancelled_state", () => {
  wsTest("test_flight_cancelled_error", (ws) => {
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }),
      new FreeKeysEvent({ keys: ["y", "x"], stimulus_id: "s2" }),
      GatherDepFailureEvent.fromError(new Error(), { worker: WS2, total_nbytes: 1, stimulus_id: "s3" }),
    );
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s1" })]);
    assert.equal(ws.tasks.size, 0);
  });

  wsTest("test_cancelled_resumed_after_flight_with_dependencies_workerstate", (ws) => {
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }),
      new FreeKeysEvent({ keys: ["y"], stimulus_id: "s2" }),
      ComputeTaskEvent.dummy("x", { stimulus_id: "s3" }),
      new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "s4" }),
    );
    assertInstructions(instructions, [
      new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s1" }),
      new Execute({ key: "x", stimulus_id: "s4" }), // note the stimulus_id
    ]);
    assert.equal(ws.task("x")!.state, "executing");
  });

  runningTaskTest("test_workerstate_executing_to_executing", (ws, prevState) => {
    const ts = ws.task("x")!;
    const instructions = ws.handleStimulus(
      new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "s2" }),
    );
    assertInstructions(instructions, prevState === "executing" ? [] : [new LongRunningMsg({ key: "x", compute_duration: null, stimulus_id: "s2" })]);
    assert.equal(ws.task("x"), ts);
    assert.equal(ts.state, prevState);
  });

  wsTest("test_workerstate_flight_to_flight", (ws) => {
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }),
      new FreeKeysEvent({ keys: ["y", "x"], stimulus_id: "s2" }),
      ComputeTaskEvent.dummy("z", { who_has: { x: [WS2] }, stimulus_id: "s3" }),
    );
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s1" })]);
    assert.equal(ws.task("x")!.state, "flight");
  });

  runningTaskTest("test_workerstate_executing_skips_fetch_on_success", (ws) => {
    const instructions = ws.handleStimulus(
      new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }),
      ExecuteSuccessEvent.dummy("x", 123, { stimulus_id: "s3" }),
    );
    assertInstructions(instructions, [new AddKeysMsg({ keys: ["x"], stimulus_id: "s3" }), new Execute({ key: "y", stimulus_id: "s3" })]);
    assert.equal(ws.task("x")!.state, "memory");
    assert.equal(ws.data.get("x"), 123);
  });

  runningTaskTest("test_workerstate_executing_failure_to_fetch", (ws) => {
    const instructions = ws.handleStimulus(
      new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }),
      ExecuteFailureEvent.dummy("x", { stimulus_id: "s3" }),
    );
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s3" })]);
    assert.equal(ws.task("x")!.state, "flight");
  });

  wsTest("test_workerstate_flight_skips_executing_on_success", (ws) => {
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }),
      new FreeKeysEvent({ keys: ["y", "x"], stimulus_id: "s2" }),
      ComputeTaskEvent.dummy("x", { stimulus_id: "s3" }),
      new GatherDepSuccessEvent({ worker: WS2, total_nbytes: 1, data: { x: 123 }, stimulus_id: "s4" }),
    );
    assertInstructions(instructions, [
      new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s1" }),
      TaskFinishedMsg.match({ key: "x", stimulus_id: "s4" }),
    ]);
    assert.equal(ws.task("x")!.state, "memory");
    assert.equal(ws.data.get("x"), 123);
  });

  for (const blockQueue of [false, true]) {
    wsTest(`test_workerstate_flight_failure_to_executing[block_queue=${blockQueue}]`, (ws) => {
      let instructions = ws.handleStimulus(
        ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }),
        new FreeKeysEvent({ keys: ["y", "x"], stimulus_id: "s2" }),
        ComputeTaskEvent.dummy("x", { stimulus_id: "s3" }),
      );
      assertInstructions(instructions, [new GatherDep({ stimulus_id: "s1", worker: WS2, to_gather: ["x"], total_nbytes: 1 })]);
      assert.equal(ws.task("x")!.state, "resumed");
      if (blockQueue) {
        instructions = ws.handleStimulus(
          ComputeTaskEvent.dummy("z", { stimulus_id: "s4" }),
          new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "s5" }),
          ExecuteSuccessEvent.dummy("z", null, { stimulus_id: "s6" }),
        );
        assertInstructions(instructions, [
          new Execute({ key: "z", stimulus_id: "s4" }),
          TaskFinishedMsg.match({ key: "z", stimulus_id: "s6" }),
          new Execute({ key: "x", stimulus_id: "s6" }),
        ]);
        assertStory(ws.story("x"), [
          ["x", "resumed", "fetch", "released", { x: "waiting" }],
          ["x", "released", "waiting", "waiting", { x: "ready" }],
          ["x", "waiting", "ready", "ready", {}],
        ]);
      } else {
        instructions = ws.handleStimulus(new GatherDepNetworkFailureEvent({ worker: WS2, total_nbytes: 1, stimulus_id: "s5" }));
        assertInstructions(instructions, [new Execute({ key: "x", stimulus_id: "s5" })]);
        assertStory(ws.story("x"), [
          ["x", "resumed", "fetch", "released", { x: "waiting" }],
          ["x", "released", "waiting", "waiting", { x: "ready" }],
          ["x", "waiting", "ready", "ready", { x: "executing" }],
        ]);
      }
      assert.equal(ws.task("x")!.state, "executing");
    });
  }

  runningTaskTest("test_workerstate_resumed_fetch_to_executing", (ws, prevState) => {
    const instructions = ws.handleStimulus(
      new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }),
      new FreeKeysEvent({ keys: ["y", "x"], stimulus_id: "s3" }),
      ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "s4" }),
    );
    assertInstructions(instructions, prevState === "executing" ? [] : [new LongRunningMsg({ key: "x", compute_duration: null, stimulus_id: "s4" })]);
    assert.equal(ws.task("x")!.state, prevState);
  });

  wsTest("test_workerstate_resumed_waiting_to_flight", (ws) => {
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s1" }),
      new FreeKeysEvent({ keys: ["y", "x"], stimulus_id: "s2" }),
      ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "s3" }),
      new FreeKeysEvent({ keys: ["x"], stimulus_id: "s4" }),
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s5" }),
    );
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["x"], stimulus_id: "s1", total_nbytes: 1 })]);
    assert.equal(ws.task("x")!.state, "flight");
  });

  for (const releaseDep of [false, true]) {
    for (const [name, done] of doneCases) {
      wsTest(`test_cancel_with_dependencies_in_memory[${name}-${releaseDep}]`, (ws) => {
        ws.handleStimulus(
          new UpdateDataEvent({ data: { x: 1 }, report: false, stimulus_id: "s1" }),
          ComputeTaskEvent.dummy("y", { who_has: { x: [ws.address] }, stimulus_id: "s2" }),
        );
        assert.equal(ws.task("x")!.state, "memory");
        assert.equal(ws.task("y")!.state, "executing");
        ws.handleStimulus(new FreeKeysEvent({ keys: ["y"], stimulus_id: "s3" }));
        assert.equal(ws.task("x")!.state, "memory");
        assert.equal(ws.task("y")!.state, "cancelled");
        if (releaseDep) {
          ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s4" }));
          assert.equal(ws.task("x")!.state, "released");
          assert.equal(ws.task("y")!.state, "cancelled");
          ws.handleStimulus(done("y", "s5"));
          assert.equal(ws.task("y"), undefined);
          assert.equal(ws.task("x"), undefined);
        } else {
          ws.handleStimulus(done("y", "s5"));
          assert.equal(ws.task("y"), undefined);
          assert.equal(ws.task("x")!.state, "memory");
        }
      });
    }
  }

  for (const resumeToFetch of [false, true]) {
    for (const resumeToExecuting of [false, true]) {
      for (const [name, done] of doneCases) {
        wsTest(`test_secede_cancelled_or_resumed_workerstate[${name}-${resumeToExecuting}-${resumeToFetch}]`, (ws) => {
          ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }), new FreeKeysEvent({ keys: ["x"], stimulus_id: "s2" }));
          if (resumeToFetch) ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s3" }));
          const ts = ws.task("x")!;
          assert.equal(ts.previous, "executing");
          assert.ok(ws.executing.has(ts) && !ws.longRunning.has(ts));
          assertInstructions(ws.handleStimulus(new SecedeEvent({ key: "x", compute_duration: 1, stimulus_id: "s4" })), []);
          assert.equal(ts.previous, "long-running");
          assert.ok(!ws.executing.has(ts) && ws.longRunning.has(ts));
          if (resumeToExecuting) {
            const instructions = ws.handleStimulus(new FreeKeysEvent({ keys: ["y"], stimulus_id: "s5" }), ComputeTaskEvent.dummy("x", { stimulus_id: "s6" }));
            // Tell the scheduler, in arrears, about the secede that happened meanwhile.
            assertInstructions(instructions, [new LongRunningMsg({ key: "x", compute_duration: null, stimulus_id: "s6" })]);
            assert.equal(ts.state, "long-running");
            assert.ok(!ws.executing.has(ts) && ws.longRunning.has(ts));
          }
          ws.handleStimulus(done("x", "s7"));
          assert.ok(!ws.executing.has(ts) && !ws.longRunning.has(ts));
        });
      }
    }
  }

  for (const [name, done] of doneCases) {
    runningTaskTest(`test_resumed_task_releases_resources[${name}]`, (ws) => {
      assert.deepEqual(ws.availableResources, { R: 0 });
      ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "cancel" }));
      assert.equal(ws.task("x")!.state, "cancelled");
      assert.deepEqual(ws.availableResources, { R: 0 });
      assertInstructions(ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "compute" })), []);
      assert.equal(ws.task("x")!.state, "resumed");
      assert.deepEqual(ws.availableResources, { R: 0 });
      ws.handleStimulus(done("x", "s2"));
      assert.deepEqual(ws.availableResources, { R: 1 });
    });

    runningTaskTest(`test_done_task_not_in_all_running_tasks[${name}]`, (ws) => {
      const ts = ws.task("x")!;
      assert.ok(ws.allRunningTasks.has(ts));
      ws.handleStimulus(done("x", "s1"));
      assert.ok(!ws.allRunningTasks.has(ts));
    });

    runningTaskTest(`test_done_resumed_task_not_in_all_running_tasks[${name}]`, (ws) => {
      ws.handleStimulus(
        new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }),
        ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }),
        done("x", "s3"),
      );
      assert.ok(!ws.allRunningTasks.has(ws.task("x")!));
    });
  }

  runningTaskTest("test_running_task_in_all_running_tasks", (ws) => {
    const ts = ws.task("x")!;
    assert.ok(ws.allRunningTasks.has(ts));
    ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }));
    assert.equal(ts.state, "cancelled");
    assert.ok(ws.allRunningTasks.has(ts));
    ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }));
    assert.equal(ts.state, "resumed");
    assert.ok(ws.allRunningTasks.has(ts));
  });
});

// ---- reschedule --------------------------------------------------------------------------------

describe("test_reschedule", () => {
  runningTaskTest("test_cancelled_reschedule_worker_state", (ws) => {
    assertInstructions(ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" })), []);
    assert.equal(ws.task("x")!.state, "cancelled");
    assert.deepEqual(ws.availableResources, { R: 0 });
    // No RescheduleMsg: the scheduler already forgot the task.
    assertInstructions(ws.handleStimulus(new RescheduleEvent({ key: "x", stimulus_id: "s2" })), []);
    assert.equal(ws.tasks.size, 0);
    assert.deepEqual(ws.availableResources, { R: 1 });
  });

  runningTaskTest("test_reschedule_releases", (ws) => {
    assertInstructions(ws.handleStimulus(new RescheduleEvent({ key: "x", stimulus_id: "s1" })), [new RescheduleMsg({ stimulus_id: "s1", key: "x" })]);
    assert.deepEqual(ws.availableResources, { R: 1 });
    assert.equal(ws.task("x"), undefined);
  });

  runningTaskTest("test_reschedule_resumed", (ws) => {
    const instructions = ws.handleStimulus(
      new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }),
      new RescheduleEvent({ key: "x", stimulus_id: "s3" }),
    );
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: ["x"], total_nbytes: 1, stimulus_id: "s3" })]);
    assert.equal(ws.task("x")!.state, "flight");
  });
});

// ---- resources ---------------------------------------------------------------------------------

describe("test_resources", () => {
  for (const state of ["executing", "long-running"] as const) {
    wsTest(`test_task_acquires_resources[${state}]`, (ws) => {
      ws.handleStimulus(ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "compute" }));
      if (state === "long-running") ws.handleStimulus(new SecedeEvent({ key: "x", compute_duration: 1.0, stimulus_id: "secede" }));
      assert.equal(ws.task("x")!.state, state);
      assert.deepEqual(ws.availableResources, { R: 0 });
    }, { resources: { R: 1 } });
  }

  for (const [name, done] of doneCases) {
    runningTaskTest(`test_task_releases_resources[${name}]`, (ws) => {
      assert.deepEqual(ws.availableResources, { R: 0 });
      ws.handleStimulus(done("x", "success"));
      assert.deepEqual(ws.availableResources, { R: 1 });
    });
    runningTaskTest(`test_cancelled_with_resources[${name}]`, (ws) => {
      ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }));
      assert.deepEqual(ws.availableResources, { R: 0 });
      ws.handleStimulus(done("x", "s2"));
      assert.deepEqual(ws.availableResources, { R: 1 });
      assert.equal(ws.task("x"), undefined);
    });
    runningTaskTest(`test_resumed_with_resources[${name}]`, (ws) => {
      ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }));
      ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, stimulus_id: "s2" }));
      assert.deepEqual(ws.availableResources, { R: 0 });
      ws.handleStimulus(done("x", "s3"));
      assert.deepEqual(ws.availableResources, { R: 1 });
    });
    runningTaskTest(`test_resumed_with_different_resources[${name}]`, (ws, prevState) => {
      ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "s1" }));
      const instructions = ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s2", resource_restrictions: { R: 0.4 } }));
      assertInstructions(instructions, prevState === "long-running" ? [new LongRunningMsg({ key: "x", compute_duration: null, stimulus_id: "s2" })] : []);
      assert.deepEqual(ws.availableResources, { R: 0 });
      ws.handleStimulus(done("x", "s3"));
      assert.deepEqual(ws.availableResources, { R: 1 });
    });
  }

  wsTest("test_task_with_dependencies_acquires_resources", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: [WS2] }, resource_restrictions: { R: 1 }, stimulus_id: "s1" }));
    assert.equal(ws.task("x")!.state, "flight");
    assert.equal(ws.task("y")!.state, "waiting");
    assert.deepEqual(ws.availableResources, { R: 1 });
    const instructions = ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: { x: 123 }, total_nbytes: 8, stimulus_id: "s2" }));
    assertInstructions(instructions, [new AddKeysMsg({ keys: ["x"], stimulus_id: "s2" }), new Execute({ key: "y", stimulus_id: "s2" })]);
    assert.equal(ws.task("y")!.state, "executing");
    assert.deepEqual(ws.availableResources, { R: 0 });
  }, { resources: { R: 1 } });

  for (const swap of [false, true]) {
    for (const [p1, p2, expectKey] of [[1, 0, "y"], [0, 1, "x"]] as const) {
      wsTest(`test_constrained_vs_ready_priority_1[${p1}-${p2}-${expectKey}-${swap}]`, (ws) => {
        ws.handleStimulus(ComputeTaskEvent.dummy("clog", { stimulus_id: "clog" }));
        let stimuli = [
          ComputeTaskEvent.dummy("x", { priority: [p1], stimulus_id: "s1" }),
          ComputeTaskEvent.dummy("y", { priority: [p2], resource_restrictions: { R: 1 }, stimulus_id: "s2" }),
        ];
        if (swap) stimuli = stimuli.reverse();
        assertInstructions(ws.handleStimulus(...stimuli, ExecuteSuccessEvent.dummy("clog", null, { stimulus_id: "s3" })), [
          TaskFinishedMsg.match({ key: "clog", stimulus_id: "s3" }),
          new Execute({ key: expectKey, stimulus_id: "s3" }),
        ]);
      }, { resources: { R: 1 } });

      wsTest(`test_constrained_vs_ready_priority_2[${p1}-${p2}-${expectKey}-${swap}]`, (ws) => {
        ws.handleStimulus(ComputeTaskEvent.dummy("clog1", { stimulus_id: "clog1" }), ComputeTaskEvent.dummy("clog2", { resource_restrictions: { R: 1 }, stimulus_id: "clog2" }));
        let stimuli = [
          ComputeTaskEvent.dummy("x", { priority: [p1], stimulus_id: "s1" }),
          ComputeTaskEvent.dummy("y", { priority: [p2], resource_restrictions: { R: 1 }, stimulus_id: "s2" }),
        ];
        if (swap) stimuli = stimuli.reverse();
        // Not enough resources for y: priority is inconsequential, x runs.
        assertInstructions(ws.handleStimulus(...stimuli, ExecuteSuccessEvent.dummy("clog1", null, { stimulus_id: "s3" })), [
          TaskFinishedMsg.match({ key: "clog1", stimulus_id: "s3" }),
          new Execute({ key: "x", stimulus_id: "s3" }),
        ]);
      }, { resources: { R: 1 }, nthreads: 2 });
    }
  }

  wsTest("test_constrained_tasks_respect_priority", (ws) => {
    const RR = { R: 1 };
    const instructions = ws.handleStimulus(
      ComputeTaskEvent.dummy("clog", { resource_restrictions: RR, stimulus_id: "clog" }),
      ComputeTaskEvent.dummy("x1", { priority: [1], resource_restrictions: RR, stimulus_id: "s1" }),
      ComputeTaskEvent.dummy("x2", { priority: [2], resource_restrictions: RR, stimulus_id: "s2" }),
      ComputeTaskEvent.dummy("x3", { priority: [0], resource_restrictions: RR, stimulus_id: "s3" }),
      ExecuteSuccessEvent.dummy("clog", null, { stimulus_id: "s4" }), // start x3
      ExecuteSuccessEvent.dummy("x3", null, { stimulus_id: "s5" }), // start x1
      ExecuteSuccessEvent.dummy("x1", null, { stimulus_id: "s6" }), // start x2
    );
    assertInstructions(instructions, [
      new Execute({ key: "clog", stimulus_id: "clog" }),
      TaskFinishedMsg.match({ key: "clog", stimulus_id: "s4" }),
      new Execute({ key: "x3", stimulus_id: "s4" }),
      TaskFinishedMsg.match({ key: "x3", stimulus_id: "s5" }),
      new Execute({ key: "x1", stimulus_id: "s5" }),
      TaskFinishedMsg.match({ key: "x1", stimulus_id: "s6" }),
      new Execute({ key: "x2", stimulus_id: "s6" }),
    ]);
  }, { resources: { R: 1 }, nthreads: 4 });

  wsTest("test_task_cancelled_and_readded_with_resources", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("clog", { resource_restrictions: { R: 1 }, stimulus_id: "s1" }), ComputeTaskEvent.dummy("x", { stimulus_id: "s2" }));
    const ts = ws.task("x")!;
    assert.equal(ts.state, "ready");
    assert.ok(ws.ready.has(ts) && !ws.constrained.has(ts));
    assert.deepEqual(ts.resourceRestrictions, {});
    ws.handleStimulus(new FreeKeysEvent({ keys: ["x"], stimulus_id: "clog" }), ComputeTaskEvent.dummy("x", { resource_restrictions: { R: 1 }, stimulus_id: "s3" }));
    const ts2 = ws.task("x")!;
    assert.equal(ts2.state, "constrained");
    assert.ok(!ws.ready.has(ts2) && ws.constrained.has(ts2));
    assert.deepEqual(ts2.resourceRestrictions, { R: 1 });
  }, { resources: { R: 1 } });
});

// ---- store failures ----------------------------------------------------------------------------

class FailStoreDict extends Map<string, unknown> {
  override set(key: string, value: unknown): this {
    // Python's FailStoreDict: the value cannot be stored (pickled / spilled).
    void value;
    throw new Error(`cannot store ${key}`);
  }
}

describe("test_worker_memory", () => {
  test("test_workerstate_fail_to_pickle_execute_1 (store refuses the value -> task-erred)", () => {
    const ws = makeWs({ data: new FailStoreDict() });
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "compute" }));
    assertInstructions(ws.handleStimulus(ExecuteSuccessEvent.dummy("x", null, { stimulus_id: "s1" })), [
      TaskErredMsg.match({ key: "x", stimulus_id: "s1", exception_text: "Error: cannot store x" }),
    ]);
    assert.equal(ws.task("x")!.state, "error");
    ws.validateState();
  });
});

// ---- 2026 run_id -------------------------------------------------------------------------------

describe("run_id (MODERN-DELTA.md §7)", () => {
  wsTest("task-finished, task-erred and long-running echo the compute-task's run_id", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { run_id: 7, stimulus_id: "s1" }), ComputeTaskEvent.dummy(tuple<Key>("y", 0), { run_id: 8, stimulus_id: "s2" }));
    const [lr] = ws.handleStimulus(new SecedeEvent({ key: "x", compute_duration: 0.5, stimulus_id: "s3" }));
    assert.deepEqual((lr as LongRunningMsg).toWire(), { key: "x", compute_duration: 0.5, op: "long-running", stimulus_id: "s3", run_id: 7 });
    const finished = ws.handleStimulus(ExecuteSuccessEvent.dummy("x", 1, { stimulus_id: "s4" }));
    assertInstructions(finished, [TaskFinishedMsg.match({ key: "x", run_id: 7 })]);
    assert.equal((finished[0] as TaskFinishedMsg).toWire().run_id, 7);
    const erred = ws.handleStimulus(ExecuteFailureEvent.dummy(tuple<Key>("y", 0), { stimulus_id: "s5" }));
    assertInstructions(erred, [TaskErredMsg.match({ key: ["y", 0], run_id: 8 })]);
    assert.equal((erred[0] as TaskErredMsg).toWire().run_id, 8);
    // A later compute-task for a task already in memory answers with the NEW run_id.
    const again = ws.handleStimulus(ComputeTaskEvent.dummy("x", { run_id: 9, stimulus_id: "s6" }));
    assert.equal((again[0] as TaskFinishedMsg).toWire().run_id, 9);
  });

  wsTest("without run_id (2022) no run_id field is sent", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }));
    const [msg] = ws.handleStimulus(ExecuteSuccessEvent.dummy("x", 1, { stimulus_id: "s2" }));
    assert.ok(!("run_id" in (msg as TaskFinishedMsg).toWire()));
  });

  wsTest("hostile names: keys __proto__ / constructor and a resource named toString", (ws) => {
    const wire = JSON.parse('{"op":"compute-task","key":"__proto__","priority":[0],"stimulus_id":"s1","who_has":{"constructor":["127.0.0.1:2"]},"nbytes":{"constructor":5},"resource_restrictions":{"toString":1}}') as Record<string, unknown>;
    const ev = ComputeTaskEvent.fromWire(wire);
    assert.deepEqual(Object.keys(ev.resource_restrictions), ["toString"]);
    assertInstructions(ws.handleStimulus(ev), [new GatherDep({ worker: WS2, to_gather: ["constructor"], total_nbytes: 5, stimulus_id: "s1" })]);
    ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: JSON.parse('{"constructor": 1}') as Record<string, unknown>, total_nbytes: 5, stimulus_id: "s2" }));
    // The worker has no "toString" resource: the task waits in constrained, nothing crashes.
    assert.equal(ws.task("__proto__")!.state, "constrained");
    assert.deepEqual(ws.availableResources, { R: 1 });
    assert.ok(ws.story("__proto__").some((r) => r.includes("constrained")));
    assert.ok(ws.story("constructor").some((r) => r[4] !== null && typeof r[4] === "object" && Object.hasOwn(r[4] as object, "__proto__")));
  }, { resources: { R: 1 } });

  wsTest("tuple keys (2026) index tasks by keyId and round-trip unchanged", (ws) => {
    const dep = tuple<Key>("x", 1);
    const instructions = ws.handleStimulus(ComputeTaskEvent.dummy(tuple<Key>("y", 1), { who_has: new Map([[dep, [WS2]]]), stimulus_id: "s1" }));
    assertInstructions(instructions, [new GatherDep({ worker: WS2, to_gather: [["x", 1]], total_nbytes: 1, stimulus_id: "s1" })]);
    assertInstructions(ws.handleStimulus(new GatherDepSuccessEvent({ worker: WS2, data: new Map([[["x", 1], 5]]), total_nbytes: 1, stimulus_id: "s2" })), [
      new AddKeysMsg({ keys: [["x", 1]], stimulus_id: "s2" }),
      new Execute({ key: ["y", 1], stimulus_id: "s2" }),
    ]);
  });
});

// ---- diagnostics -------------------------------------------------------------------------------

describe("diagnostics", () => {
  test("transitionCounterMax catches runaway transition loops", () => {
    const ws = makeWs({ transitionCounterMax: 3 });
    assert.throws(() => ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }), ExecuteSuccessEvent.dummy("x", 1, { stimulus_id: "s2" })), (e: unknown) => {
      // Wrapped or not, the error carries the code and the task's story.
      return e instanceof TransitionCounterMaxExceeded && e.code === "DASK_ERR_TRANSITION_COUNTER_MAX" && Array.isArray(e.story);
    });
  });

  wsTest("story() finds records by key and by stimulus_id; the log is bounded", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "compute-1" }));
    const byStim = ws.story("compute-1");
    assert.ok(byStim.length >= 3);
    assert.ok(byStim.every((r) => r.includes("compute-1")));
    assert.deepEqual(ws.story("x"), byStim);
    assert.deepEqual(ws.stimulusStory("x").map((e) => e.stimulus_id), ["compute-1"]);
    const small = makeWs({ logLength: 5 });
    for (let i = 0; i < 20; i++) small.handleStimulus(ComputeTaskEvent.dummy(`k${i}`, { stimulus_id: `s${i}` }), new FreeKeysEvent({ keys: [`k${i}`], stimulus_id: `f${i}` }));
    assert.equal(small.log.length, 5);
  }, { logLength: 1000 });

  wsTest("validateState detects a corrupted state", (ws) => {
    ws.handleStimulus(ComputeTaskEvent.dummy("x", { stimulus_id: "s1" }));
    // Corrupt on purpose: a running task whose data is already stored.
    ws.data.set("x", 1);
    assert.throws(() => ws.validateState(), (e: unknown) => e instanceof InvalidTaskState || (e as { code?: string }).code === "DASK_ERR_WORKER_ASSERT");
    ws.data.delete("x");
  });
});
