// Wire -> event decoding against the real captured scheduler messages (2022.12.1 and 2026.7.1),
// and a replay of each captured worker's scheduler stream through WorkerState, compared with
// what the real Python worker answered. Pure: reads the JSON indexes, no sockets.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { VECTORS_2022, VECTORS_2026 } from "../helpers/env.ts";
import {
  AcquireReplicasEvent, ComputeTaskEvent, eventFromWire, ExecuteFailureEvent, ExecuteSuccessEvent, FreeKeysEvent, GatherDepSuccessEvent,
  PauseEvent, RemoveReplicasEvent, STREAM_HANDLERS, UnpauseEvent, type StateMachineEvent,
} from "../../src/worker/events.ts";
import { Execute, GatherDep, SendMessageToScheduler, TaskErredMsg, TaskFinishedMsg, type Instruction } from "../../src/worker/instructions.ts";
import { keyId, type Key } from "../../src/protocol/values.ts";
import { makeWs } from "./helpers.ts";

/** Undo the JSON conventions of the index files (README of each vectors folder). */
function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v === null || typeof v !== "object") return v;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o.__map__)) return new Map((o.__map__ as [unknown, unknown][]).map(([k, x]) => [fromJson(k), fromJson(x)]));
  if (typeof o.__bytes__ === "string") return Buffer.from(o.__bytes__, "hex");
  if (typeof o.$bytes_hex === "string") return Buffer.from(o.$bytes_hex, "hex");
  if (Array.isArray(o.$set)) return (o.$set as unknown[]).map(fromJson);
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromJson(x)]));
}

type Msg = Record<string, unknown>;
interface Stream {
  name: string;
  worker: string | null;
  toWorker: Msg[];
  fromWorker: Msg[];
}

/** Scheduler<->worker batched streams, in capture order, per worker connection. */
function captureStreams(): Stream[] {
  const streams = new Map<string, Stream>();
  const get = (name: string): Stream => {
    let s = streams.get(name);
    if (!s) streams.set(name, (s = { name, worker: null, toWorker: [], fromWorker: [] }));
    return s;
  };
  const ops = (decoded: unknown): Msg[] => (Array.isArray(decoded) ? decoded : [decoded]).filter((m): m is Msg => typeof m === "object" && m !== null && typeof (m as Msg).op === "string").map((m) => fromJson(m) as Msg);
  const i2022 = JSON.parse(readFileSync(VECTORS_2022 + "index.json", "utf8")) as { messages: Array<{ sender: string; receiver: string; decoded: unknown }> };
  for (const m of i2022.messages) {
    if (m.sender === "scheduler" && m.receiver.startsWith("worker")) get(`2022/${m.receiver}`).toWorker.push(...ops(m.decoded));
    if (m.receiver === "scheduler" && m.sender.startsWith("worker")) get(`2022/${m.sender}`).fromWorker.push(...ops(m.decoded));
  }
  for (const dir of ["python-client", "nonpython-probe"]) {
    const idx = JSON.parse(readFileSync(`${VECTORS_2026}${dir}/index.json`, "utf8")) as { messages: Array<{ conn: number; endpoint: string; direction: string; decoded: unknown }> };
    for (const m of idx.messages) {
      if (m.endpoint !== "scheduler") continue;
      const s = get(`2026/${dir}/conn${m.conn}`);
      if (m.direction === "s2c") s.toWorker.push(...ops(m.decoded));
      else s.fromWorker.push(...ops(m.decoded));
    }
  }
  // Keep worker streams: those the scheduler sent compute-task or free-keys on.
  const out = [...streams.values()].filter((s) => s.toWorker.some((m) => m.op === "compute-task" || m.op === "free-keys"));
  for (const s of out) {
    const reg = s.fromWorker.find((m) => m.op === "register-worker");
    s.worker = typeof reg?.address === "string" ? reg.address : null;
  }
  return out;
}

const streams = captureStreams();

describe("eventFromWire on captured scheduler messages", () => {
  test("the captures hold worker streams of both versions", () => {
    assert.ok(streams.some((s) => s.name.startsWith("2022/")));
    assert.ok(streams.some((s) => s.name.startsWith("2026/")));
  });

  test("every captured scheduler->worker state op decodes", () => {
    let n = 0;
    for (const s of streams) {
      for (const m of s.toWorker) {
        if (!Object.hasOwn(STREAM_HANDLERS, m.op as string)) continue;
        const ev = eventFromWire(m);
        if (m.op === "worker-status-change" && m.status !== "paused" && m.status !== "running") assert.equal(ev, null);
        else assert.ok(ev !== null && ev.stimulus_id === m.stimulus_id, `${s.name} ${String(m.op)}`);
        n++;
      }
    }
    assert.ok(n >= 20, `only ${n} messages decoded`);
  });

  test("ComputeTaskEvent.fromWire: 2022 function/args/kwargs and duration; 2026 run_id, null resources", () => {
    const all = streams.flatMap((s) => s.toWorker.filter((m) => m.op === "compute-task").map((m) => [s.name, m] as const));
    const v2022 = all.find(([n, m]) => n.startsWith("2022/") && m.function != null)!;
    const ev22 = ComputeTaskEvent.fromWire(v2022[1]);
    assert.equal(ev22.run_id, null);
    assert.equal(ev22.duration, v2022[1].duration);
    assert.ok(ev22.run_spec.function instanceof Uint8Array);
    assert.deepEqual(ev22.run_spec.args, v2022[1].args);
    const v2026 = all.find(([n, m]) => n.startsWith("2026/") && m.resource_restrictions === null)!;
    const ev26 = ComputeTaskEvent.fromWire(v2026[1]);
    assert.equal(ev26.run_id, v2026[1].run_id);
    assert.equal(typeof ev26.run_id, "number");
    assert.deepEqual(ev26.resource_restrictions, {});
    assert.deepEqual(ev26.run_spec, { task: v2026[1].run_spec });
    assert.equal(ev26.duration, null);
    assert.equal(ev26.span_id, v2026[1].span_id);
  });

  test("malformed messages are coded protocol errors, not crashes", () => {
    const base = { op: "compute-task", key: "x", priority: [0], stimulus_id: "s", who_has: {}, nbytes: {} };
    for (const bad of [
      { ...base, key: { no: 1 } },
      { ...base, priority: "high" },
      { ...base, who_has: { x: "127.0.0.1:1" } },
      { ...base, stimulus_id: 3 },
      { ...base, resource_restrictions: { R: "1" } },
      { op: "free-keys", keys: "x", stimulus_id: "s" },
      { op: "steal-request", stimulus_id: "s" },
      { op: "no-such-op" },
      { nop: 1 },
    ]) {
      assert.throws(() => eventFromWire(bad), (e: unknown) => (e as { code?: string }).code?.startsWith("DASK_ERR_WORKER_") === true, JSON.stringify(bad));
    }
    assert.equal(eventFromWire({ op: "close", reason: "scheduler-close" }), null);
    assert.ok(eventFromWire({ op: "worker-status-change", status: "paused", stimulus_id: "p" }) instanceof PauseEvent);
    assert.ok(eventFromWire({ op: "worker-status-change", status: "running", stimulus_id: "r" }) instanceof UnpauseEvent);
    assert.ok(eventFromWire({ op: "free-keys", keys: new Set(["a"]), stimulus_id: "s" }) instanceof FreeKeysEvent);
    assert.ok(eventFromWire({ op: "remove-replicas", keys: [["t", 0]], stimulus_id: "s" }) instanceof RemoveReplicasEvent);
    const acq = eventFromWire({ op: "acquire-replicas", who_has: new Map([[["t", 0], ["w"]]]), nbytes: new Map([[["t", 0], 3]]), stimulus_id: "s" });
    assert.ok(acq instanceof AcquireReplicasEvent && acq.nbytes.size === 1);
  });
});

describe("task-erred / long-running / steal-response shapes", () => {
  test("task-erred has the field set of the real workers' task-erred (2022 without run_id, 2026 with)", () => {
    let compared = 0;
    for (const s of streams) {
      const real = s.fromWorker.find((m) => m.op === "task-erred");
      if (!real) continue;
      const ws = makeWs();
      ws.handleStimulus(ComputeTaskEvent.dummy("x", { run_id: typeof real.run_id === "number" ? real.run_id : null, stimulus_id: "c" }));
      const [msg] = ws.handleStimulus(ExecuteFailureEvent.fromError(new ZeroDivisionErrorLike("division by zero"), { key: "x", start: 1, stop: 2, stimulus_id: "e" }));
      assert.deepEqual(Object.keys((msg as TaskErredMsg).toWire()).sort(), Object.keys(real).sort(), s.name);
      compared++;
    }
    assert.ok(compared >= 2, `compared ${compared}`);
  });
});

class ZeroDivisionErrorLike extends Error {
  override name = "ZeroDivisionError";
}

describe("replay of captured scheduler streams through WorkerState", () => {
  for (const s of streams) {
    test(`${s.name}: every key the real worker reported done is reported by WorkerState, with the real field sets`, () => {
      // A shell that answers every instruction at once: Execute succeeds, GatherDep returns all.
      const ws = makeWs({ address: s.worker ?? "tcp://127.0.0.1:1", nthreads: 4 });
      const reported = new Map<string, Instruction[]>();
      const sent = new Map<string, Record<string, unknown>>();
      const pending: StateMachineEvent[] = [];
      const run = (instructions: Instruction[]): void => {
        for (const i of instructions) {
          if (i instanceof Execute) pending.push(ExecuteSuccessEvent.dummy(i.key, `value of ${keyId(i.key)}`, { nbytes: 8, stimulus_id: `execute-${keyId(i.key)}` }));
          else if (i instanceof GatherDep) pending.push(new GatherDepSuccessEvent({ worker: i.worker, total_nbytes: i.total_nbytes, data: new Map(i.to_gather.map((k: Key) => [k, 1])), stimulus_id: `gather-${i.worker}` }));
          if (i instanceof TaskFinishedMsg || i instanceof TaskErredMsg) reported.set(keyId(i.key), [...(reported.get(keyId(i.key)) ?? []), i]);
          if (i instanceof SendMessageToScheduler) sent.set(i.op, i.toWire());
        }
      };
      for (const m of s.toWorker) {
        if (!Object.hasOwn(STREAM_HANDLERS, m.op as string)) continue;
        const ev = eventFromWire(m);
        if (!ev) continue;
        run(ws.handleStimulus(ev));
        while (pending.length > 0) run(ws.handleStimulus(pending.shift()!));
      }
      ws.validateState();
      const real = s.fromWorker.filter((m) => m.op === "task-finished" || m.op === "task-erred").map((m) => keyId(m.key as Key));
      assert.ok(real.length > 0 || s.toWorker.every((m) => m.op !== "compute-task"));
      for (const k of real) assert.ok(reported.has(k), `${s.name}: real worker reported ${k}, WorkerState did not`);
      // Wire shape: every op both we and the real worker sent has exactly the real field set.
      let compared = 0;
      for (const [op, ours] of sent) {
        const real = s.fromWorker.find((m) => m.op === op);
        if (!real) continue;
        assert.deepEqual(Object.keys(ours).sort(), Object.keys(real).sort(), `${s.name}: ${op} fields`);
        compared++;
      }
      assert.ok(compared > 0, `${s.name}: no message to compare`);
      // 2026 requires run_id: every message we would send for a 2026 compute-task carries it.
      if (s.name.startsWith("2026/")) {
        for (const msgs of reported.values()) for (const msg of msgs) assert.equal(typeof (msg as TaskFinishedMsg).toWire().run_id, "number");
      }
    });
  }
});
