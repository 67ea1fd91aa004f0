// Replay of the real 2026.7.1 capture (vectors-2026.7/python-client/) through OUR worker stack:
// each captured scheduler->worker message of a real Python worker is decoded from its wire bytes
// (FrameReader + loads with deserialize:false, as the worker shell does), fed through
// eventFromWire -> WorkerState.handleStimulus, and our worker->scheduler messages (toWire) are
// compared with those the real worker sent: same ops, same order, same keys, same run_id, same
// field sets. Timings, addresses, stimulus ids, thread ids and type/typename bytes are ignored.
// Also: every captured compute-task run_spec goes through parseComputeTask.
//
// The fake shell answers instructions at once, with what the capture shows the real worker
// did: Execute -> the real task-finished nbytes (or the real task-erred), GatherDep -> the real
// get_data reply. Pure: reads files, opens no sockets, starts no process.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { VECTORS_2026 } from "../helpers/env.ts";
import { FrameReader } from "../../src/protocol/frames.ts";
import { loads, Pickled } from "../../src/protocol/serialize.ts";
import { keyId, type Key } from "../../src/protocol/values.ts";
import { DaskError } from "../../src/errors.ts";
import {
  ComputeTaskEvent, eventFromWire, ExecuteFailureEvent, ExecuteSuccessEvent, GatherDepSuccessEvent, STREAM_HANDLERS, UpdateDataEvent, type StateMachineEvent,
} from "../../src/worker/events.ts";
import { Execute, GatherDep, SendMessageToScheduler, type Instruction } from "../../src/worker/instructions.ts";
import { parseComputeTask } from "../../src/worker/run-spec.ts";
import { makeWs } from "./helpers.ts";

const DIR = VECTORS_2026 + "python-client/";

interface IndexEntry {
  file: string;
  conn: number;
  endpoint: string;
  direction: "c2s" | "s2c";
  kind: string;
}
const index = JSON.parse(readFileSync(DIR + "index.json", "utf8")) as { messages: IndexEntry[] };

type Msg = Record<string, unknown>;

/** One captured message decoded by our own stack (the prelude parser and loads of the shell). */
function decodeFile(file: string): unknown {
  const reader = new FrameReader();
  reader.push(new Uint8Array(readFileSync(DIR + file)));
  const frames = reader.next();
  assert.ok(frames !== null, `${file}: incomplete message`);
  assert.equal(reader.next(), null, `${file}: more than one message`);
  return loads(frames, { deserialize: false });
}

/** Batched stream payloads are lists of ops; RPC payloads are one map. */
const opsOf = (decoded: unknown): Msg[] => (Array.isArray(decoded) ? (decoded as Msg[]) : [decoded as Msg]);

interface CapturedWorker {
  name: string;
  address: string;
  //: The worker's batched stream to the scheduler (the connection it registered on).
  conn: number;
}

/** The real workers: each connection on which a register-worker was sent. */
function capturedWorkers(): CapturedWorker[] {
  const out: CapturedWorker[] = [];
  for (const m of index.messages) {
    if (m.endpoint !== "scheduler" || m.kind !== "register-worker") continue;
    const reg = decodeFile(m.file) as Msg;
    out.push({ name: reg.name as string, address: reg.address as string, conn: m.conn });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const workers = capturedWorkers();
const addressOf = (endpoint: string): string | undefined => workers.find((w) => w.name === endpoint)?.address;

/** Ops the real worker sends on its stream that do not come from the state machine. */
const SHELL_SENT = new Set(["register-worker", "worker-status-change", "keep-alive", "heartbeat_worker"]);

/**
 * The comparable part of a worker->scheduler message: op, key(s), run_id, field set, nbytes,
 * status, startstops actions. Ignored: stimulus_id, thread, type, typename, timings, addresses
 * (`source` of a transfer), exception payloads (fed from the capture, so equal by construction).
 */
function comparable(m: Msg): Msg {
  const c: Msg = { op: m.op, fields: Object.keys(m).sort() };
  if ("key" in m) c.key = JSON.stringify(m.key);
  if ("keys" in m) c.keys = JSON.stringify(m.keys);
  if ("run_id" in m) c.run_id = m.run_id;
  if ("nbytes" in m) c.nbytes = m.nbytes;
  if ("status" in m) c.status = m.status;
  if (Array.isArray(m.startstops)) c.startstops = (m.startstops as Msg[]).map((s) => s.action);
  return c;
}

/** get_data replies of the capture: "<requester>|<peer address>|<keys>" -> the reply's data. */
function capturedGetData(): Map<string, Map<Key, unknown>> {
  const out = new Map<string, Map<Key, unknown>>();
  const pending = new Map<number, string>();
  for (const m of index.messages) {
    if (m.kind === "get_data" && m.direction === "c2s") {
      const req = decodeFile(m.file) as Msg;
      const keys = [...(req.keys as Iterable<Key>)].map(keyId).sort();
      pending.set(m.conn, `${String(req.who)}|${addressOf(m.endpoint)}|${keys.join(",")}`);
    } else if (m.kind === "reply-to-get_data" && pending.has(m.conn)) {
      const reply = decodeFile(m.file) as Msg;
      const data = reply.data instanceof Map ? reply.data : new Map(Object.entries(reply.data as Msg));
      out.set(pending.get(m.conn)!, data as Map<Key, unknown>);
      pending.delete(m.conn);
    }
  }
  return out;
}

interface Replay {
  ours: Msg[];
  real: Msg[];
  //: Instructions the fake shell could not answer from the capture (must stay empty).
  unanswered: string[];
}

/** Replays one real worker's inputs through a fresh WorkerState. */
function replay(w: CapturedWorker): Replay {
  const getData = capturedGetData();
  const real: Msg[] = [];
  const inputs: StateMachineEvent[] = [];
  for (const m of index.messages) {
    if (m.endpoint === "scheduler" && m.conn === w.conn && m.kind !== "handshake" && !m.kind.startsWith("reply-to-")) {
      const ops = opsOf(decodeFile(m.file));
      if (m.direction === "c2s") real.push(...ops.filter((o) => !SHELL_SENT.has(o.op as string)));
      else for (const o of ops) if (Object.hasOwn(STREAM_HANDLERS, o.op as string)) inputs.push(...[eventFromWire(o)].filter((e) => e !== null));
    } else if (m.endpoint === w.name && m.kind === "update_data" && m.direction === "c2s") {
      // Scatter: the update_data RPC handler (2026 sends no add-keys for it; report=false).
      const req = decodeFile(m.file) as Msg;
      inputs.push(new UpdateDataEvent({ data: req.data as Msg, report: UpdateDataEvent.reportRequested(req), stimulus_id: `update-data-${m.file}` }));
    }
  }
  // Outcomes of executions, in the real worker's order, consumed once each.
  const outcomes = real.filter((o) => o.op === "task-finished" || o.op === "task-erred");
  const ws = makeWs({ address: w.address, nthreads: 1 });
  const ours: Msg[] = [];
  const unanswered: string[] = [];
  const queue: StateMachineEvent[] = [];
  const answer = (instructions: Instruction[]): void => {
    for (const i of instructions) {
      if (i instanceof SendMessageToScheduler) ours.push(i.toWire());
      else if (i instanceof Execute) {
        const at = outcomes.findIndex((o) => keyId(o.key as Key) === keyId(i.key));
        if (at < 0) {
          unanswered.push(`Execute ${keyId(i.key)}`);
          continue;
        }
        const o = outcomes.splice(at, 1)[0]!;
        const sid = `execute-${keyId(i.key)}`;
        if (o.op === "task-finished") {
          queue.push(new ExecuteSuccessEvent({ key: i.key, value: `value of ${keyId(i.key)}`, start: 1, stop: 2, nbytes: o.nbytes as number, type: o.type as Uint8Array, typename: o.typename as string, stimulus_id: sid }));
        } else {
          queue.push(new ExecuteFailureEvent({
            key: i.key, start: 1, stop: 2, exception: o.exception, traceback: o.traceback,
            exception_text: o.exception_text as string, traceback_text: o.traceback_text as string, stimulus_id: sid,
          }));
        }
      } else if (i instanceof GatherDep) {
        const want = `${w.address}|${i.worker}|${i.to_gather.map(keyId).sort().join(",")}`;
        const data = getData.get(want);
        if (!data) unanswered.push(`GatherDep ${want}`);
        else queue.push(new GatherDepSuccessEvent({ worker: i.worker, total_nbytes: i.total_nbytes, data, start: 1, stop: 2, stimulus_id: `gather-${want}` }));
      }
    }
  };
  for (const ev of inputs) {
    answer(ws.handleStimulus(ev));
    while (queue.length > 0) answer(ws.handleStimulus(queue.shift()!));
  }
  ws.validateState();
  return { ours, real, unanswered };
}

describe("replay of the real 2026.7.1 capture through WorkerState", () => {
  test("the capture holds two real workers, each with a registered stream", () => {
    assert.deepEqual(workers.map((w) => w.name), ["workerA", "workerB"]);
    assert.notEqual(workers[0]!.conn, workers[1]!.conn);
  });

  for (const w of workers) {
    test(`${w.name}: our worker->scheduler messages equal the real worker's (ops, order, keys, run_id, fields)`, () => {
      const r = replay(w);
      assert.deepEqual(r.unanswered, []);
      assert.ok(r.real.length > 0);
      assert.deepEqual(r.ours.map(comparable), r.real.map(comparable));
    });
  }
});

describe("update_data report (scatter)", () => {
  test("the captured 2026 scatter request carries no report field, so no add-keys is asked for", () => {
    const reqs = index.messages.filter((m) => m.kind === "update_data" && m.direction === "c2s").map((m) => decodeFile(m.file) as Msg);
    assert.ok(reqs.length > 0);
    for (const r of reqs) {
      assert.equal(Object.hasOwn(r, "report"), false);
      assert.equal(UpdateDataEvent.reportRequested(r), false);
    }
  });
  test("2022 shapes: report=False -> none; only an explicit report=True asks for add-keys", () => {
    assert.equal(UpdateDataEvent.reportRequested({ op: "update_data", data: {}, report: false }), false);
    assert.equal(UpdateDataEvent.reportRequested({ op: "update_data", data: {}, report: true }), true);
    // Live on 2026.7.1, the old default (report unless false) made the scheduler answer
    // remove-replicas and forget the scattered key before any task could use it.
    const ws = makeWs({ address: "127.0.0.1:1" });
    const sent = ws.handleStimulus(new UpdateDataEvent({ data: { k: 1 }, report: UpdateDataEvent.reportRequested({ data: { k: 1 } }), stimulus_id: "s" }));
    assert.deepEqual(sent.filter((i) => i instanceof SendMessageToScheduler).map((i) => (i as SendMessageToScheduler).toWire().op), []);
    const reported = makeWs({ address: "127.0.0.1:1" }).handleStimulus(new UpdateDataEvent({ data: { k: 1 }, report: true, stimulus_id: "s" }));
    assert.deepEqual(reported.filter((i) => i instanceof SendMessageToScheduler).map((i) => (i as SendMessageToScheduler).toWire().op), ["add-keys"]);
  });
});

describe("parseComputeTask on every compute-task run_spec of the capture", () => {
  test("each run_spec is read (no longer refused as an opaque Pickled) and refused naming its real Python function", () => {
    // Oracle: the pickle globals that Python's pickletools listed for each run_spec sub-frame.
    const entries = index.messages as Array<IndexEntry & { subframes?: Array<{ kind: string; pickle_globals?: string[] }> }>;
    const results: string[] = [];
    for (const m of entries) {
      if (m.endpoint !== "scheduler" || m.direction !== "s2c" || !m.kind.includes("compute-task")) continue;
      const tasks = opsOf(decodeFile(m.file)).filter((o) => o !== null && typeof o === "object" && o.op === "compute-task");
      const globals = (m.subframes ?? []).filter((s) => s.kind === "__Pickled__").map((s) => s.pickle_globals ?? []);
      assert.equal(globals.length, tasks.length, m.file);
      tasks.forEach((o, i) => {
        const k = keyId(o.key as Key);
        const g = globals[i]!;
        assert.throws(() => parseComputeTask(o, new Map()), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_NOT_A_WASM_TASK" && results.push(`${k}: ${e.message}`) > 0, k);
        const msg = results[results.length - 1]!;
        if (g.some((x) => x.startsWith("cloudpickle."))) {
          // A __main__ function travels as cloudpickle: the data-only reader refuses its globals.
          assert.match(msg, /cloudpickle/, k);
        } else {
          // A plain Task(func, ...): the refusal names one of the pickle's non-dask globals (the
          // others are structural, e.g. builtins.dict for a Dict container).
          assert.ok(g.some((x) => !x.startsWith("dask.") && msg.includes(`(${x})`)), `${k}: ${msg} / ${g.join(" ")}`);
        }
      });
    }
    assert.ok(results.length >= 14, `only ${results.length} compute-tasks`);
    assert.ok(results.some((r) => r.includes("cloudpickle")));
  });

  test("a run_spec with out-of-band buffers (numpy argument) is read with them; a dask-wasm Task in a Pickled parses", () => {
    const gallery = VECTORS_2026 + "run_spec-gallery/";
    const reader = new FrameReader();
    reader.push(new Uint8Array(readFileSync(gallery + "numpy_arg_oob.frames.bin")));
    const [oob] = opsOf(loads(reader.next()!, { deserialize: false }));
    const rs = oob!.run_spec as Pickled;
    assert.ok(rs instanceof Pickled && rs.frames.length > 0);
    // Its NEXT_BUFFER reads the sub-frame: the refusal is for its Python func, not the buffer.
    assert.throws(() => parseComputeTask(oob!, new Map()), (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_NOT_A_WASM_TASK" && /\(builtins\.len\)/.test(e.message) && !/out-of-band/.test(e.message));
    // The same Task with its func a dask-wasm reference: the numpy argument arrives as a typed array
    // over the out-of-band frame (live, 2026.7.1: a numpy argument of a JS task travels this way).
    const numpyTask = withWasmFunc(rs.header["pickled-obj"] as Uint8Array, "len");
    const withNumpy = parseComputeTask({ ...oob!, run_spec: new Pickled({ ...rs.header, "pickled-obj": numpyTask }, rs.frames) }, new Map());
    assert.deepEqual(withNumpy.fn, { kind: "js", ref: "tasks.js#inc" });
    const arr = withNumpy.args[0] as ArrayLike<unknown> & { constructor: { name: string } };
    const expected = readNumpyOob(rs.frames[0]!);
    assert.equal(arr.constructor.name, "BigInt64Array");
    assert.deepEqual([...(arr as BigInt64Array)], expected);
    // The same wrapper around a real scheduler Task pickle whose func is a dask-wasm reference.
    const pickle = runTaskPickle();
    const call = parseComputeTask({ op: "compute-task", key: "k", run_spec: new Pickled({ "pickled-obj": pickle, "num-sub-frames": 0 }, []) }, new Map());
    assert.deepEqual(call.fn, { kind: "js", ref: "tasks.js#inc" });
    assert.deepEqual(call.args, [[1, 2, 3]]);
  });
});

/**
 * The gallery's literal_sum pickle (Task("k", builtins.sum, [1, 2, 3]), written by the 2026
 * scheduler) with its func global replaced by the str "dask-wasm:js:tasks.js#inc", which is how
 * a dask-wasm function travels. Byte surgery on the real pickle, located by content (checked).
 */
function runTaskPickle(): Uint8Array {
  const g = JSON.parse(readFileSync(VECTORS_2026 + "run_spec-gallery/gallery.json", "utf8")) as Record<string, { pickle_hex: string }>;
  return withWasmFunc(Buffer.from(g.literal_sum!.pickle_hex, "hex"), "sum");
}

/** The int64 values of a little-endian out-of-band frame (the numpy_arg_oob argument's data). */
function readNumpyOob(frame: Uint8Array): bigint[] {
  return [...new BigInt64Array(frame.slice().buffer)];
}

/** A 2026 Task pickle (PROTO 5 + one FRAME) with its `builtins.<name>` func replaced by the dask-wasm reference. */
function withWasmFunc(pickle: Uint8Array, name: string): Uint8Array {
  const orig = Buffer.from(pickle);
  // SHORT_BINUNICODE 'builtins' MEMOIZE SHORT_BINUNICODE <name> MEMOIZE STACK_GLOBAL MEMOIZE
  const globalOps = Buffer.concat([Buffer.from("8c086275696c74696e73948c", "hex"), Buffer.from([name.length]), Buffer.from(name, "latin1"), Buffer.from("949394", "hex")]);
  const at = orig.indexOf(globalOps);
  assert.ok(at > 11 && orig.indexOf(globalOps, at + 1) < 0, `the pickle no longer has one builtins.${name} global`);
  const ref = Buffer.from("dask-wasm:js:tasks.js#inc", "latin1");
  const body = Buffer.concat([orig.subarray(11, at), Buffer.from([0x8c, ref.length]), ref, Buffer.from([0x94]), orig.subarray(at + globalOps.length)]);
  // PROTO 5, FRAME <u64 body length>, body.
  const head = Buffer.from([0x80, 0x05, 0x95, 0, 0, 0, 0, 0, 0, 0, 0]);
  head.writeBigUInt64LE(BigInt(body.length), 3);
  return new Uint8Array(Buffer.concat([head, body]));
}

describe("transfer startstops (Python _get_cause)", () => {
  const run = (withTimes: boolean): Record<string, unknown> => {
    const ws = makeWs({ address: "127.0.0.1:1" });
    const fetch = ws.handleStimulus(ComputeTaskEvent.dummy("y", { who_has: { x: ["127.0.0.1:2"] }, run_id: 7, stimulus_id: "c" }));
    const gd = fetch.find((i): i is GatherDep => i instanceof GatherDep)!;
    const times = withTimes ? { start: 10, stop: 11 } : {};
    const exec = ws.handleStimulus(new GatherDepSuccessEvent({ worker: gd.worker, total_nbytes: gd.total_nbytes, data: { x: 1 }, ...times, stimulus_id: "g" }));
    assert.ok(exec.some((i) => i instanceof Execute && i.key === "y"));
    const done = ws.handleStimulus(ExecuteSuccessEvent.dummy("y", 2, { stimulus_id: "e" }));
    ws.validateState();
    return (done.find((i) => i instanceof SendMessageToScheduler) as SendMessageToScheduler).toWire();
  };

  test("a measured transfer goes to the dependent's task-finished, before its compute", () => {
    assert.deepEqual(run(true).startstops, [{ action: "transfer", start: 10, stop: 11, source: "127.0.0.1:2" }, { action: "compute", start: 0, stop: 1 }]);
  });

  test("an unmeasured transfer (no start/stop) records nothing", () => {
    assert.deepEqual(run(false).startstops, [{ action: "compute", start: 0, stop: 1 }]);
  });
});
