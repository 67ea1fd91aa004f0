// The worker shell (distributed worker.py `Worker` / `BaseWorker.handle_stimulus`): owns every
// socket, timer, thread and byte, and nothing else. Platform-neutral: what differs between Node,
// a browser's Web Worker and workerd (the executor, disk spill, host facts, GC) comes in as a
// WorkerPlatform; worker.ts is the Node one, src/browser/ and src/edge/ build theirs. Transports
// come from the comm registry (tcp on Node, the gateway's channels in tabs and edges).
// Decisions are the pure WorkerState's (state.ts): each scheduler message becomes an event, `handleStimulus` answers with
// instructions, and this file runs them and feeds every outcome back as another event —
// failures included (worker.py gather_dep maps busy / network / anything else to three events).
// Nothing thrown while running an instruction reaches the state.
//
// Values: the worker keeps every value serialized (dask's header + frames) in the byte store
// (src/store/byte-store.ts): task results are serialized once when they are produced, data
// fetched from peers or scattered by clients is stored exactly as it arrived, and `get_data`
// answers with the stored frames untouched, so Python peers get back what they sent and nbytes
// reported to the scheduler are the exact stored sizes. Values are deserialized only when a
// task needs them as arguments.
//
// Wire: DASK-PROTOCOL-2022.12.md §6 (register-worker, heartbeat_worker, scheduler stream ops),
// §7 (the RPC handlers peers call), MODERN-DELTA.md §5-§8 (the 2026 field sets, sent to both).
import { DaskError } from "../errors.ts";
import { connect } from "../comm/registry.ts";
import { ConnectionPool } from "../comm/pool.ts";
import { BatchedSend, splitBatch } from "../comm/batched.ts";
import { Server, NO_REPLY, type HandlerContext } from "../comm/server.ts";
import { CommError, type Comm, type CommOptions } from "../comm/comm.ts";
import { serializeCodec } from "../comm/wire.ts";
import { deserialize, serialize, Serialized } from "../protocol/serialize.ts";
import { isKey, keyId, type Key } from "../protocol/values.ts";
import { ByteStore } from "../store/byte-store.ts";
import type { SpillHook } from "../store/byte-store.ts";
import { WorkerState, type DataStore } from "./state.ts";
import {
  ExecuteFailureEvent, ExecuteSuccessEvent, FreeKeysEvent, GatherDepBusyEvent, GatherDepFailureEvent,
  GatherDepNetworkFailureEvent, GatherDepSuccessEvent, RetryBusyWorkerEvent, UpdateDataEvent, eventFromWire,
  type StateMachineEvent,
} from "./events.ts";
import { Execute, GatherDep, RetryBusyWorkerLater, SendMessageToScheduler, type Instruction } from "./instructions.ts";
import { parseComputeTask } from "./run-spec.ts";
import { exceptionPickle, exceptionText, tracebackText } from "./error-pickle.ts";
import type { TaskExecutor, TaskOutcome } from "./task-runner.ts";

/** A spill store the platform may give (Node: DiskSpill); closed with the worker. */
export interface PlatformSpill extends SpillHook {
  readonly directory: string;
  close(): void;
}

/** What differs between the runtimes a worker runs in. */
export interface WorkerPlatform {
  /** The task executor (Node: a worker_threads pool; browser, workerd: InlineExecutor). */
  createExecutor(opts: { nthreads: number; modules: string[]; allowSource: boolean; name: string }): TaskExecutor;
  /** A spill store for memoryLimit > 0, or undefined where there is no disk (values stay in memory). */
  createSpill?(localDirectory: string | undefined): PlatformSpill | undefined;
  /** `versions` reply parts: host facts and runtime package versions. */
  host: { OS: string; machine: string };
  packages: Record<string, string>;
  /** Reported as local_directory where nothing spills. */
  localDirectory: string;
  pid: number;
  /** Resident memory in bytes (0 where the platform cannot tell). */
  rss(): number;
  /** A full garbage collection in this thread, where the platform allows one. */
  gc?(): void;
}

export interface WorkerOptions {
  /** Scheduler address, e.g. "tcp://127.0.0.1:8786". */
  scheduler: string;
  /** Tasks that run at once, each in its own worker thread (default 1). */
  nthreads?: number;
  /** Unique worker name (default: the listening address, as dask-worker). */
  name?: string;
  /** Bytes kept in memory before the coldest values spill to disk (0 = no limit). */
  memoryLimit?: number;
  /** Abstract resources (default {wasm: nthreads}, so Python tasks never land here by accident). */
  resources?: Record<string, number>;
  /** Spill directory parent (default the OS temp directory). */
  localDirectory?: string;
  /** Where to listen for peers (default tcp://127.0.0.1:0). */
  listenAddress?: string;
  /** Address advertised to the scheduler and peers (default: the bound listen address). */
  contactAddress?: string;
  /** ES modules whose exports tasks may name ("tasks.js#inc"). */
  modules?: string[];
  /** Run shipped function source (off by default: DESIGN.md "Tasks"). */
  allowSource?: boolean;
  /** Dashboard port, reported to the scheduler in `services` (the CLI serves it). */
  dashboardPort?: number;
  /** Logging sink (default: warnings and errors to stderr). */
  log?: (level: "debug" | "info" | "warning" | "error", message: string, error?: unknown) => void;
  /** Connect timeout for the scheduler and peers, ms (default 30 s, dask's comm.timeouts.connect). */
  connectTimeoutMs?: number;
}

export interface WorkerCoreOptions extends WorkerOptions {
  platform: WorkerPlatform;
}

export interface WorkerMetrics {
  tasksRun: number;
  tasksFailed: number;
  tasksExecuting: number;
  keysStored: number;
  bytesStored: number;
  bytesSpilled: number;
  keysSpilled: number;
  transfersIn: number;
  transfersOut: number;
  transferBytesIn: number;
  transferBytesOut: number;
  wasmModulesCompiled: number;
  memoryLimit: number;
  rss: number;
}

/** A value as the worker keeps it: dask's serialized form. */
interface StoredValue {
  header: Record<string, unknown>;
  frames: Uint8Array[];
}

/** Python's default retry backoff for busy peers is short; we keep it fixed (worker.py `_readd_busy_worker`: 0.15 s). */
const BUSY_RETRY_MS = 150;

const VERSION = "0.1.0";

/** Released bytes after which the worker asks V8 for a full collection (a few ms of pause). */
const GC_AFTER_RELEASED_BYTES = 16 * 1024 * 1024;
/** Releases come in bursts (free-keys of a whole computation): collect once, after the burst. */
const GC_DEBOUNCE_MS = 200;

/** Frames as the store keeps them: own buffers, not views pinning a larger socket chunk. */
function ownFrames(frames: readonly Uint8Array[]): Uint8Array[] {
  return frames.map((f) => (f.byteOffset === 0 && f.byteLength === f.buffer.byteLength ? f : f.slice()));
}

/** Any received value (Serialized from Python, plain msgpack from others) in stored form. */
function toStored(value: unknown): StoredValue {
  if (value instanceof Serialized) return { header: value.header, frames: ownFrames(value.frames) };
  const s = serialize(value);
  return { header: s.header, frames: s.frames };
}

function storedBytes(v: StoredValue): number {
  let n = 0;
  for (const f of v.frames) n += f.byteLength;
  return n;
}

/** Entries of a wire map: plain objects have string keys, Maps may have tuple keys. */
function entriesOf(m: unknown): Array<[Key, unknown]> {
  if (m instanceof Map) return [...m].filter(([k]) => isKey(k)) as Array<[Key, unknown]>;
  if (m && typeof m === "object" && !Array.isArray(m)) return Object.entries(m as Record<string, unknown>);
  return [];
}

/** A map for the wire: a plain object when every key is a string, else a Map (tuple keys). */
function wireMap<V>(entries: Array<[Key, V]>): Record<string, V> | Map<Key, V> {
  if (entries.every(([k]) => typeof k === "string")) return Object.fromEntries(entries) as Record<string, V>;
  return new Map(entries);
}

function keysOf(v: unknown): Key[] {
  const arr = v instanceof Set ? [...v] : Array.isArray(v) ? v : [];
  return arr.filter(isKey);
}

/** The store seen by the state machine (DataStore by key id), over the byte store. */
class StoreData implements DataStore {
  readonly store: ByteStore;
  constructor(store: ByteStore) {
    this.store = store;
  }
  has(id: string): boolean {
    return this.store.has(id);
  }
  get(id: string): unknown {
    return this.store.peek(id);
  }
  set(id: string, value: unknown): unknown {
    const v = value instanceof Serialized || !(value && typeof value === "object" && "frames" in value) ? toStored(value) : (value as StoredValue);
    this.store.put(id, v.frames, v.header);
    return this;
  }
  delete(id: string): boolean {
    const n = this.store.nbytes(id) ?? 0;
    const deleted = this.store.delete(id);
    if (deleted) this.onRelease(n);
    return deleted;
  }
  //: Called with the bytes of every deleted value (the worker collects garbage after big releases).
  onRelease: (bytes: number) => void = () => {};
  keys(): Iterable<string> {
    return this.store.keys();
  }
}

export class WorkerCore {
  readonly options: Readonly<WorkerOptions>;
  readonly nthreads: number;
  readonly memoryLimit: number;
  readonly resources: Readonly<Record<string, number>>;
  readonly serverId = `Worker-${globalThis.crypto.randomUUID()}`;
  //: Resolves once the worker has fully closed (comms, threads, spill directory).
  readonly closed: Promise<void>;

  #log: NonNullable<WorkerOptions["log"]>;
  #state!: WorkerState;
  #store: ByteStore;
  #platform: WorkerPlatform;
  #spill: PlatformSpill | undefined;
  #executor: TaskExecutor | undefined;
  #server: Server;
  #pool: ConnectionPool;
  #batched = new BatchedSend({ intervalMs: 2 }); // worker -> scheduler: 2 ms (§5.2)
  #schedulerComm: Comm | undefined;
  #address = "";
  #name = "";
  #status: "init" | "running" | "closing" | "closed" = "init";
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatMs = 500;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #stimulusCounter = 0;
  #resolveClosed!: () => void;
  #closing: Promise<void> | undefined;
  #connectOptions: CommOptions;
  // transfer accounting for /metrics
  #transfersIn = 0;
  #transfersOut = 0;
  #transferBytesIn = 0;
  #transferBytesOut = 0;
  // garbage collection after large releases (see #released)
  #releasedBytes = 0;
  // tasks refused before reaching the executor (a Python function, a malformed run_spec)
  #tasksRefused = 0;
  #gcTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: WorkerCoreOptions) {
    const { platform, ...rest } = options;
    this.#platform = platform;
    this.options = rest;
    this.nthreads = options.nthreads ?? 1;
    this.memoryLimit = options.memoryLimit ?? 0;
    this.resources = options.resources ?? { wasm: this.nthreads };
    this.#log = options.log ?? ((level, message, error) => {
      if (level === "warning" || level === "error") console.error(`[dask-wasm worker] ${level}: ${message}${error ? ` (${(error as Error).message ?? error})` : ""}`);
    });
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // Values from peers and clients stay serialized (scheduler-style): see the module header.
    this.#connectOptions = { codec: serializeCodec({ deserialize: false }), timeoutMs: options.connectTimeoutMs ?? 30_000 };
    if (this.memoryLimit > 0) this.#spill = platform.createSpill?.(options.localDirectory);
    this.#store = new ByteStore({
      memoryLimit: this.memoryLimit,
      spill: this.#spill,
      onSpillError: (e) => this.#log("error", "spilling failed; the value stays in memory", e),
    });
    this.#pool = new ConnectionPool({ connectOptions: this.#connectOptions, name: "Worker" });
    this.#server = new Server({
      id: this.serverId,
      log: (level, message, error) => this.#log(level, message, error),
      identity: () => ({ type: "Worker", id: this.serverId, scheduler: this.options.scheduler, nthreads: this.nthreads, memory_limit: this.memoryLimit }),
      handlers: {
        get_data: (args, ctx) => this.#getData(args, ctx),
        update_data: (args) => this.#updateData(args),
        gather: (args) => this.#gather(args),
        free_keys: (args) => {
          this.#handle(new FreeKeysEvent({ keys: keysOf(args["keys"]), stimulus_id: String(args["stimulus_id"] ?? this.#stimulus("free-keys")) }));
          return null;
        },
        keys: () => [...this.#store.keys()],
        ping: () => new TextEncoder().encode("pong"),
        versions: () => ({ host: { ...platform.host }, packages: { "dask-wasm": VERSION, ...platform.packages } }),
        terminate: () => {
          setTimeout(() => void this.close("terminate"), 0);
          return "OK";
        },
      },
    });
  }

  get address(): string {
    return this.#address;
  }

  get name(): string {
    return this.#name;
  }

  get status(): string {
    return this.#status;
  }

  /** The state machine (read-only use: tests and diagnostics). */
  get state(): WorkerState {
    return this.#state;
  }

  #stimulus(what: string): string {
    return `${what}-${Date.now() / 1000}-${++this.#stimulusCounter}`;
  }

  /** Listen, start the threads, register with the scheduler, start heartbeats. */
  async start(): Promise<void> {
    const bound = await this.#server.listen(this.options.listenAddress ?? "tcp://127.0.0.1:0", this.#connectOptions);
    this.#address = this.options.contactAddress ?? bound;
    this.#name = this.options.name ?? this.#address;
    const data = new StoreData(this.#store);
    data.onRelease = (bytes) => this.#released(bytes);
    this.#state = new WorkerState({
      nthreads: this.nthreads,
      address: this.#address,
      data,
      resources: this.resources,
      transferIncomingCountLimit: 4,
      validate: false,
      sizeof: (v) => (v && typeof v === "object" && "frames" in v ? storedBytes(v as StoredValue) : 0),
    });
    this.#executor = this.#platform.createExecutor({ nthreads: this.nthreads, modules: this.options.modules ?? [], allowSource: this.options.allowSource ?? false, name: this.#name });
    await this.#executor.start();
    await this.#register();
    this.#status = "running";
    this.#scheduleHeartbeat();
  }

  async #register(): Promise<void> {
    const comm = await connect(this.options.scheduler, this.#connectOptions);
    this.#schedulerComm = comm;
    // The 2026 field set; a subset of what 2022 accepts, so one message serves both (MODERN-DELTA §5).
    await comm.write({
      op: "register-worker",
      reply: false,
      address: this.#address,
      status: "running",
      server_id: this.serverId,
      nthreads: this.nthreads,
      name: this.#name,
      now: Date.now() / 1000,
      resources: this.resources,
      memory_limit: this.memoryLimit || null,
      local_directory: this.#spill?.directory ?? this.#platform.localDirectory,
      services: this.options.dashboardPort ? { dashboard: this.options.dashboardPort } : {},
      nanny: null,
      pid: this.#platform.pid,
      versions: { host: {}, packages: {} },
      metrics: this.#heartbeatMetrics(),
      extra: {},
      stimulus_id: this.#stimulus("worker-connect"),
    });
    const reply = (await comm.read()) as Record<string, unknown>;
    if (!reply || reply["status"] !== "OK") {
      await comm.close().catch(() => {});
      throw new DaskError("DASK_ERR_REGISTER", `the scheduler refused this worker: ${String(reply?.["message"] ?? JSON.stringify(reply))}`);
    }
    const interval = Number(reply["heartbeat-interval"]);
    if (interval > 0) this.#heartbeatMs = interval * 1000;
    this.#batched.start(comm);
    void this.#readSchedulerStream(comm);
  }

  /** The scheduler's batched stream: ops -> events -> instructions (worker.py handle_scheduler). */
  async #readSchedulerStream(comm: Comm): Promise<void> {
    for (;;) {
      let msg: unknown;
      try {
        msg = await comm.read();
      } catch (error) {
        if (this.#status === "running") {
          // Reconnection is not supported by dask (§6.1): a worker whose stream broke leaves.
          this.#log("warning", "lost the scheduler stream; closing", error);
          void this.close("scheduler-stream-lost");
        }
        return;
      }
      const batch = splitBatch(msg);
      const events: StateMachineEvent[] = [];
      for (const op of batch.ops) {
        const fields = op as Record<string, unknown>;
        const name = fields["op"];
        if (name === "close") {
          void this.close(String(fields["reason"] ?? "scheduler-close"));
          return;
        }
        if (name === "close-stream") {
          void this.close("scheduler-close-stream");
          return;
        }
        try {
          const ev = eventFromWire(fields);
          if (ev) events.push(ev);
        } catch (error) {
          // A malformed or unknown op fails alone; everything else in the batch still runs.
          this.#log("error", `bad scheduler op ${JSON.stringify(name)}`, error);
        }
      }
      if (events.length) this.#handle(...events);
      if (batch.closeStream) {
        void this.close("scheduler-close-stream");
        return;
      }
    }
  }

  /** One mutator: every event goes through here, and every instruction it yields is run. */
  #handle(...events: StateMachineEvent[]): void {
    if (this.#status === "closed") return;
    let instructions: Instruction[];
    try {
      instructions = this.#state.handleStimulus(...events);
    } catch (error) {
      // A state-machine invariant broke: the state can no longer be trusted (Python closes the worker).
      this.#log("error", "worker state machine failed; closing", error);
      void this.close("state-machine-error");
      return;
    }
    for (const ins of instructions) this.#run(ins);
  }

  #run(ins: Instruction): void {
    if (ins instanceof SendMessageToScheduler) {
      if (!this.#batched.closed) this.#batched.send(ins.toWire());
    } else if (ins instanceof Execute) {
      void this.#execute(ins).then((ev) => this.#handle(ev));
    } else if (ins instanceof GatherDep) {
      void this.#gatherDep(ins).then((ev) => this.#handle(ev));
    } else if (ins instanceof RetryBusyWorkerLater) {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        this.#handle(new RetryBusyWorkerEvent({ worker: ins.worker, stimulus_id: this.#stimulus("retry-busy-worker") }));
      }, BUSY_RETRY_MS);
      this.#timers.add(t);
    } else {
      this.#log("error", `unknown instruction ${ins.constructor.name}`);
    }
  }

  /** Runs one task; always resolves with the event that reports the outcome. */
  async #execute(ins: Execute): Promise<StateMachineEvent> {
    const id = keyId(ins.key);
    const ts = this.#state.tasks.get(id);
    const stimulus_id = this.#stimulus("task-finished");
    const now = Date.now() / 1000;
    try {
      if (!ts || !ts.runSpec) throw new DaskError("DASK_ERR_WORKER_ASSERT", `no run_spec for task ${JSON.stringify(ins.key)}`);
      const deps = new Map<string, unknown>();
      for (const dep of ts.dependencies) {
        const v = this.#store.get(dep.id);
        if (!v) throw new DaskError("DASK_ERR_STORE_MISSING", `dependency ${JSON.stringify(dep.key)} of ${JSON.stringify(ts.key)} is not in memory`);
        deps.set(dep.id, deserialize(v.header as Record<string, unknown>, v.frames));
      }
      const rs = ts.runSpec;
      const call = parseComputeTask({ key: ts.key, function: rs.function, args: rs.args, kwargs: rs.kwargs, run_spec: rs.task }, deps);
      const outcome = await this.#executor!.run(call);
      const start = toSeconds(outcome.start);
      const stop = toSeconds(outcome.stop);
      this.#state.threads.set(id, outcome.thread);
      if (outcome.status === "ok") {
        const s = serialize(outcome.value);
        const stored: StoredValue = { header: s.header, frames: s.frames };
        return new ExecuteSuccessEvent({
          key: ins.key, value: stored, start, stop, nbytes: storedBytes(stored),
          type: null, typename: typeName(outcome.value), stimulus_id,
        });
      }
      return this.#failure(ins.key, outcome, start, stop, this.#stimulus("task-erred"));
    } catch (error) {
      this.#tasksRefused++;
      const e = error instanceof Error ? error : new Error(String(error));
      const outcome: Extract<TaskOutcome, { status: "error" }> = {
        status: "error", typeName: e.name, message: e.message, stack: e.stack ?? "", start: now, stop: Date.now() / 1000, thread: 0,
        ...(error instanceof DaskError ? { code: error.code } : {}),
      };
      return this.#failure(ins.key, outcome, now, Date.now() / 1000, this.#stimulus("task-erred"));
    }
  }

  #failure(key: Key, outcome: Extract<TaskOutcome, { status: "error" }>, start: number, stop: number, stimulus_id: string): ExecuteFailureEvent {
    return new ExecuteFailureEvent({
      key, start, stop, stimulus_id,
      // A hand-built pickle of a builtins exception (§10.2): Python clients raise it with the JS text.
      exception: exceptionPickle(outcome),
      traceback: null,
      exception_text: exceptionText(outcome),
      traceback_text: tracebackText(outcome),
    });
  }

  /** Fetches keys from one peer; always resolves with the event that reports the outcome. */
  async #gatherDep(ins: GatherDep): Promise<StateMachineEvent> {
    const base = { worker: ins.worker, total_nbytes: ins.total_nbytes };
    const start = Date.now() / 1000;
    try {
      const reply = (await this.#pool.callWithAck(ins.worker, { op: "get_data", keys: ins.to_gather, who: this.#address, reply: true })) as Record<string, unknown> | null;
      const status = reply?.["status"];
      if (status === "busy") return new GatherDepBusyEvent({ ...base, stimulus_id: this.#stimulus("gather-dep-busy") });
      if (status !== "OK") throw new DaskError("DASK_ERR_WORKER_MESSAGE", `get_data from ${ins.worker} answered ${JSON.stringify(status)}`);
      const data = new Map<Key, unknown>();
      for (const [k, v] of entriesOf(reply!["data"])) {
        const stored = toStored(v);
        this.#transferBytesIn += storedBytes(stored);
        data.set(k, stored);
      }
      this.#transfersIn++;
      return new GatherDepSuccessEvent({ ...base, data, start, stop: Date.now() / 1000, stimulus_id: this.#stimulus("gather-dep-success") });
    } catch (error) {
      if (error instanceof CommError) {
        // Connection refused, reset, timed out: Python treats the peer as gone (OSError branch).
        return new GatherDepNetworkFailureEvent({ ...base, stimulus_id: this.#stimulus("gather-dep-network-failure") });
      }
      return GatherDepFailureEvent.fromError(error, { ...base, stimulus_id: this.#stimulus("gather-dep-failure") });
    }
  }

  /** `get_data` (§7.1): reply with the stored frames, then read the requester's "OK". */
  async #getData(args: Record<string, unknown>, ctx: HandlerContext): Promise<unknown> {
    const entries: Array<[Key, Serialized]> = [];
    let bytes = 0;
    for (const key of keysOf(args["keys"])) {
      const v = this.#store.get(keyId(key));
      if (!v) continue; // missing keys are simply omitted
      const s = new Serialized(v.header as Record<string, unknown>, v.frames);
      bytes += storedBytes(s);
      entries.push([key, s]);
    }
    await ctx.comm.write({ status: "OK", data: wireMap(entries) });
    const ack = await ctx.comm.read();
    if (ack !== "OK") this.#log("warning", `get_data: expected the "OK" ack from ${ctx.comm.peerAddress}, got ${JSON.stringify(ack)}`);
    this.#transfersOut++;
    this.#transferBytesOut += bytes;
    return NO_REPLY;
  }

  /** `update_data` (scatter): values go straight into memory. */
  #updateData(args: Record<string, unknown>): Record<string, unknown> {
    const data = new Map<Key, unknown>();
    const nbytes: Array<[Key, number]> = [];
    for (const [k, v] of entriesOf(args["data"])) {
      const stored = toStored(v);
      data.set(k, stored);
      nbytes.push([k, storedBytes(stored)]);
    }
    const report = UpdateDataEvent.reportRequested(args);
    this.#handle(new UpdateDataEvent({ data, report, stimulus_id: String(args["stimulus_id"] ?? this.#stimulus("update-data")) }));
    return { nbytes: wireMap(nbytes), status: "OK" };
  }

  /** `gather` (replicate/rebalance): fetch keys from the named peers and keep them. */
  async #gather(args: Record<string, unknown>): Promise<unknown> {
    const byWorker = new Map<string, Key[]>();
    const failed: Key[] = [];
    for (const [key, addrs] of entriesOf(args["who_has"])) {
      const list = Array.isArray(addrs) ? addrs.filter((a): a is string => typeof a === "string") : [];
      if (list.length === 0) {
        failed.push(key);
        continue;
      }
      const w = list[0]!;
      if (!byWorker.has(w)) byWorker.set(w, []);
      byWorker.get(w)!.push(key);
    }
    const data = new Map<Key, unknown>();
    await Promise.all(
      [...byWorker].map(async ([worker, keys]) => {
        try {
          const reply = (await this.#pool.callWithAck(worker, { op: "get_data", keys, who: this.#address, reply: true })) as Record<string, unknown>;
          const got = new Set<string>();
          for (const [k, v] of entriesOf(reply?.["data"])) {
            data.set(k, toStored(v));
            got.add(keyId(k));
          }
          for (const k of keys) if (!got.has(keyId(k))) failed.push(k);
        } catch (error) {
          this.#log("warning", `gather from ${worker} failed`, error);
          failed.push(...keys);
        }
      }),
    );
    if (data.size) this.#handle(new UpdateDataEvent({ data, report: false, stimulus_id: this.#stimulus("gather") }));
    return failed.length ? { status: "partial-fail", keys: failed } : { status: "OK" };
  }

  #heartbeatMetrics(): Record<string, unknown> {
    const stats = this.#store.stats();
    return {
      task_counts: this.#state ? this.#state.taskCounts : {},
      bandwidth: { total: 100_000_000, workers: {}, types: {} },
      digests_total_since_heartbeat: {},
      managed_bytes: stats.memoryBytes,
      spilled_bytes: { memory: stats.memoryBytes, disk: stats.spilledBytes },
      transfer: {
        incoming_bytes: this.#state?.transferIncomingBytes ?? 0,
        incoming_count: this.#state?.transferIncomingCount ?? 0,
        incoming_count_total: this.#state?.transferIncomingCountTotal ?? 0,
        outgoing_bytes: 0,
        outgoing_count: 0,
        outgoing_count_total: this.#transfersOut,
      },
      event_loop_interval: 0.02,
      cpu: 0,
      memory: this.#platform.rss(),
      time: Date.now() / 1000,
      host_net_io: { read_bps: 0, write_bps: 0 },
      host_disk_io: { read_bps: 0, write_bps: 0 },
      num_fds: 0,
    };
  }

  #scheduleHeartbeat(): void {
    this.#heartbeatTimer = setTimeout(() => void this.#heartbeat(), this.#heartbeatMs);
  }

  async #heartbeat(): Promise<void> {
    if (this.#status !== "running") return;
    const now = Date.now() / 1000;
    const executing: Array<[Key, number]> = [];
    for (const ts of this.#state.executing) {
      const ss = ts.startstops;
      executing.push([ts.key, ss.length ? now - (ss[ss.length - 1]!.start ?? now) : 0]);
    }
    try {
      const reply = (await this.#pool.call(this.options.scheduler, {
        op: "heartbeat_worker", reply: true, address: this.#address, now, metrics: this.#heartbeatMetrics(),
        executing: wireMap(executing), extensions: {},
      })) as Record<string, unknown> | null;
      if (reply?.["status"] === "missing") {
        // The scheduler removed us (e.g. heartbeat timeout): reconnection is not supported (§6.1).
        this.#log("warning", "the scheduler no longer knows this worker; closing");
        void this.close("scheduler-missing");
        return;
      }
      const interval = Number(reply?.["heartbeat-interval"]);
      if (interval > 0) this.#heartbeatMs = interval * 1000;
    } catch (error) {
      this.#log("warning", "heartbeat failed", error);
    }
    if (this.#status === "running") this.#scheduleHeartbeat();
  }

  /**
   * Released values are ArrayBuffers outside the V8 heap: their memory returns only when V8
   * collects, and an idle worker does not. After GC_AFTER_RELEASED_BYTES have been released, one
   * collection runs (debounced) in this thread and in every task thread, so RSS goes back to idle
   * as a Python worker's does (issue 3 Must-show 6; runtime/gc.node.ts).
   */
  #released(bytes: number): void {
    this.#releasedBytes += bytes;
    if (this.#releasedBytes < GC_AFTER_RELEASED_BYTES || this.#gcTimer) return;
    this.#gcTimer = setTimeout(() => {
      this.#gcTimer = undefined;
      this.#releasedBytes = 0;
      this.#platform.gc?.();
      this.#executor?.collectGarbage();
    }, GC_DEBOUNCE_MS);
    this.#gcTimer.unref?.();
  }

  /** Counters for /metrics. */
  metrics(): WorkerMetrics {
    const stats = this.#store.stats();
    const ex = this.#executor?.stats ?? { tasksRun: 0, tasksFailed: 0, wasmModulesCompiled: 0 };
    return {
      // A task refused before it reached a thread (a Python function) ran here and failed.
      tasksRun: ex.tasksRun + this.#tasksRefused,
      tasksFailed: ex.tasksFailed + this.#tasksRefused,
      tasksExecuting: this.#state ? this.#state.executing.size : 0,
      keysStored: stats.keys,
      bytesStored: stats.memoryBytes + stats.spilledBytes,
      bytesSpilled: stats.spilledBytes,
      keysSpilled: stats.spilledCount,
      transfersIn: this.#transfersIn,
      transfersOut: this.#transfersOut,
      transferBytesIn: this.#transferBytesIn,
      transferBytesOut: this.#transferBytesOut,
      wasmModulesCompiled: ex.wasmModulesCompiled,
      memoryLimit: this.memoryLimit,
      rss: this.#platform.rss(),
    };
  }

  /** Leaves the cluster: close-stream to the scheduler (it reschedules our tasks), then stops. */
  close(reason = "worker-close"): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close(reason: string): Promise<void> {
    const wasRunning = this.#status === "running";
    this.#status = "closing";
    this.#log("info", `closing: ${reason}`);
    if (this.#heartbeatTimer) clearTimeout(this.#heartbeatTimer);
    if (this.#gcTimer) clearTimeout(this.#gcTimer);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (wasRunning && !this.#batched.closed) {
      // worker.py close(): batched_send({"op": "close-stream"}) then close the stream.
      this.#batched.send({ op: "close-stream" });
      await this.#batched.close().catch(() => {});
    } else {
      this.#batched.abort();
    }
    await this.#schedulerComm?.close().catch(() => {});
    await this.#server.close().catch(() => {});
    await this.#pool.close().catch(() => {});
    await this.#executor?.close().catch(() => {});
    try {
      this.#spill?.close();
    } catch (error) {
      this.#log("warning", "removing the spill directory failed", error);
    }
    this.#status = "closed";
    this.#resolveClosed();
  }
}

/** Seconds since the epoch from an executor stamp (ms since the epoch, or already seconds). */
function toSeconds(t: number): number {
  return t > 1e11 ? t / 1000 : t;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "NoneType";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return "list";
  if (v instanceof Map || (typeof v === "object" && v.constructor === Object)) return "dict";
  return typeof v === "object" ? (v.constructor?.name ?? "object") : typeof v;
}
