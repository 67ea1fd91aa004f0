// Client: drives a dask.distributed scheduler from JavaScript (distributed client.py `Client`,
// DaskDistributedDispatcher.jl's `Client`/`DaskExecutor`). DASK-PROTOCOL-2022.12.md §9.
//
// Role: the IO shell around ClientState (state.ts, pure): it owns the scheduler stream (one
// comm, register-client -> stream-start, then a BatchedSend every 10 ms as Python's client), a
// ConnectionPool for RPCs (gather, scatter, who_has, ... each on pooled comms, §9.4), the
// waiters of futures, a FinalizationRegistry that releases keys whose last Future was
// collected, and the reconnect timer after a lost scheduler. Every stream op goes through the
// state; the state's resolutions wake waiters here. Must not: decide key states itself, throw
// an unhandled rejection (every internal promise has a handler), or keep the process alive
// once closed (no timers left behind).
//
// Tasks on the wire (2022 plain form, parsed by src/worker/run-spec.ts): tasks[key] =
// {"function": "dask-wasm:js:tasks.js#inc", "args": [...], "kwargs": {...}}; a Future in the
// arguments becomes its key string plus a `dependencies` entry (the worker substitutes the
// value, as Python's pack_data). Tasks go to workers advertising the "wasm" resource by default,
// so a Python worker never receives a JS task.
//
// Dialects: at each connect the client asks the scheduler's `versions` RPC; distributed >= 2023
// gets the 2026 shapes (graph-wire.ts encodeGraph2026: a pickled LLGExpr of Tasks, dependencies
// as TaskRefs; `cancel-keys` on the stream; publish flush + uid; `cancelled-keys` back), anything
// else the 2022 ones. The 2026 path is checked offline against captured bytes only so far.
//
// Scheduler loss (client.py `_reconnect`): when the stream breaks, every future is cancelled at
// once with DASK_ERR_SCHEDULER_LOST (waiters and in-flight RPCs reject), then the client tries
// to reach the scheduler again for `reconnectTimeoutMs`; if it cannot, it closes.
import { DaskError, ConfigError } from "../errors.ts";
import { connect as registryConnect } from "../comm/registry.ts";
import { ConnectionPool } from "../comm/pool.ts";
import { BatchedSend, splitBatch } from "../comm/batched.ts";
import { getField, type RpcRequest } from "../comm/rpc.ts";
import type { Comm, CommOptions } from "../comm/comm.ts";
import { serializeCodec } from "../comm/wire.ts";
import { funcName, taskKey, tokenize } from "../tokens.ts";
import { isTuple, keyId, tuple, type Key } from "../protocol/values.ts";
import {
  cancelOp2026, dialectFromVersions, encodeGraph2022, encodeGraph2026, lowerArg, publishOps2026, restartOp, spanMetadata2026,
  type Dialect, type GraphOptions2022, type WireTask2022, type WireTask2026,
} from "./graph-wire.ts";
import { ClientState, type CancelReason, type FutureStatus, type Resolution, type StreamOp } from "./state.ts";
import { Future, TaskError, type FutureHost } from "./future.ts";
import type { LocalClusterHandle, LocalClusterOptions } from "./local-cluster.ts";
import type { ProgressOptions } from "./progress.ts";

export { Future, TaskError } from "./future.ts";

/** Prefix of a dask-wasm function reference on the wire (python/dask_wasm TAG). */
const TAG = "dask-wasm:";

export interface ClientOptions {
  /** Connect + handshake limit for the stream and each pooled comm, ms (dask: 30 s). */
  connectTimeoutMs?: number;
  /**
   * After the scheduler stream breaks: how long to keep trying to reach the scheduler again
   * before the client closes, ms (dask: the client's `timeout`, 30 s). Pending futures are
   * rejected with DASK_ERR_SCHEDULER_LOST at once, whatever this is. 0 = close at once.
   */
  reconnectTimeoutMs?: number;
  /** Resources every task asks for unless its options say otherwise (default {wasm: 1}; null = none). */
  defaultResources?: Record<string, number> | null;
  /** Options of the local cluster `Client.connect()` starts when given no address. */
  cluster?: LocalClusterOptions;
  /**
   * Wire dialect: "auto" (default) asks the scheduler's `versions` RPC at each connect
   * (distributed >= 2023 -> "2026"); "2022" / "2026" force one (tests, or a scheduler whose
   * versions RPC is unavailable).
   */
  dialect?: "auto" | Dialect;
  /** Replace registry.connect (tests). */
  connect?: (address: string, opts: CommOptions) => Promise<Comm>;
}

/** Per-task options of submitWith / map / submitGraph. */
export interface SubmitOptions {
  /** Explicit key (default: token of fn + args + kwargs, so identical tasks share a key). */
  key?: string;
  /** false: a fresh random key each time (dask's pure=False). Default true. */
  pure?: boolean;
  /** Keyword arguments passed to the function. */
  kwargs?: Record<string, unknown>;
  /** Worker addresses (or hostnames) the task may run on. */
  workers?: string[];
  /** With `workers`: prefer them but allow others (dask's allow_other_workers). */
  allowOtherWorkers?: boolean;
  /** Abstract resources, e.g. {wasm: 1, GPU: 1}; null = no resource restriction. */
  resources?: Record<string, number> | null;
  /** Times the scheduler reruns the task after it fails. */
  retries?: number;
  /** User priority (higher runs first). */
  priority?: number;
}

export interface ScatterOptions {
  /** Put every value on every worker. */
  broadcast?: boolean;
  /** Only these worker addresses. */
  workers?: string[];
}

/** A graph for submitGraph (C2's compute): dependencies already appear as key strings in args. */
export interface GraphSpec {
  tasks: Map<string, { fn: string; args: unknown[]; kwargs?: Record<string, unknown>; deps: string[] }>;
  /** Keys the caller wants futures for. */
  keys: string[];
  resources?: Record<string, number>;
  workers?: string[];
  retries?: number;
  priority?: number;
}

/** Marks a published value that is a list of futures (TS clients turn it back into futures). */
const FUTURES_TAG = "__dask_wasm_futures__";

/** One task in the connection's dialect, built when it is submitted (errors surface there). */
type TaskEntry = { key: string; wire2022: WireTask2022 } | { key: string; wire2026: WireTask2026 };

/** "tasks.js#inc" -> "dask-wasm:js:tasks.js#inc"; a full reference passes through. */
export function wireFunction(fn: string): string {
  if (typeof fn !== "string" || fn.length === 0) throw new ConfigError(`fn must be a function reference like "tasks.js#inc", got ${String(fn)}`);
  return fn.startsWith(TAG) ? fn : `${TAG}js:${fn}`;
}

/**
 * Futures inside `value` (arrays, tuples, plain objects) -> their key strings, recording each
 * key in `deps`. Python's client does the same before sending (unpack_remotedata).
 */
export function replaceFutures(value: unknown, deps: Set<string>, depth = 0): unknown {
  if (value instanceof Future) {
    if (typeof value.key !== "string") throw new ConfigError("only string keys can be dependencies on a 2022 scheduler");
    deps.add(value.key);
    return value.key;
  }
  if (depth > 64) return value;
  if (Array.isArray(value)) {
    const out = value.map((v) => replaceFutures(v, deps, depth + 1));
    return isTuple(value) ? tuple(...out) : out;
  }
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = replaceFutures(v, deps, depth + 1);
    return out;
  }
  return value;
}

/** Python's type name for a scattered value's key prefix (client.py scatter: `int-<token>`). */
function typeName(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  if (v instanceof Uint8Array) return "bytes";
  if (Array.isArray(v)) return "list";
  if (v === null || v === undefined) return "NoneType";
  if (typeof v === "object") return Object.getPrototypeOf(v) === Object.prototype ? "dict" : (v.constructor?.name ?? "object");
  return typeof v;
}

function entries(v: unknown): Array<[string, unknown]> {
  if (v instanceof Map) return [...v.entries()].map(([k, x]) => [String(k), x]);
  if (typeof v === "object" && v !== null) return Object.entries(v);
  return [];
}

function recordOf<T>(v: unknown, map: (x: unknown) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, x] of entries(v)) out[k] = map(x);
  return out;
}

/** 2026 publish_get answers a list, one entry (or null) per requested name. */
const firstOf = (x: unknown): unknown => (Array.isArray(x) ? x[0] : x);
/** A uid as Python's uuid4().hex (publish flush/put pairing). */
const newUid = (): string => globalThis.crypto.randomUUID().replace(/-/g, "");
const strings = (x: unknown): string[] => (Array.isArray(x) ? x.map(String) : []);

export class Client implements FutureHost {
  readonly id = `Client-${globalThis.crypto.randomUUID()}`;
  readonly address: string;
  readonly options: ClientOptions;
  #state: ClientState;
  #pool: ConnectionPool;
  #connectOptions: CommOptions;
  #batched: BatchedSend | undefined;
  #stream: Comm | undefined;
  #status: "connecting" | "running" | "reconnecting" | "closing" | "closed" = "connecting";
  #closedReason: CancelReason = "client-closed";
  /** Waiters per key id, woken by resolutions. */
  #waiters = new Map<string, Set<() => void>>();
  /** Rejects every in-flight RPC when the scheduler is lost; renewed after a reconnect. */
  #lost!: Promise<never>;
  #rejectLost!: (e: Error) => void;
  #registry = new FinalizationRegistry<string>((id) => this.#dropRef(id));
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** A local cluster started for this client, closed with it (Client.connect() with no address). */
  #cluster: LocalClusterHandle | undefined;
  /** The scheduler's dialect, settled at each connect (see the header). */
  #dialect: Dialect = "2022";

  private constructor(address: string, options: ClientOptions) {
    this.address = address;
    this.options = options;
    this.#state = new ClientState(this.id);
    // Values stay readable-or-opaque: a pickle our reader refuses becomes an opaque Serialized
    // instead of failing the whole message (one odd result must not break the stream).
    this.#connectOptions = { codec: serializeCodec({ keepUnreadable: true }), timeoutMs: options.connectTimeoutMs ?? 30_000 };
    const connect = options.connect ?? registryConnect;
    this.#pool = new ConnectionPool({ connectOptions: this.#connectOptions, connect, name: "Client" });
    this.#renewLost();
  }

  /**
   * Connects to a scheduler ("tcp://127.0.0.1:8786"). Without an address, starts a local
   * cluster (src/client/local-cluster.ts `startLocalCluster`) that closes with the client.
   */
  static async connect(address?: string, options: ClientOptions = {}): Promise<Client> {
    if (address === undefined) {
      // Loaded lazily through a variable specifier: the local cluster spawns processes, and
      // bundlers for browsers and edges must not follow this import.
      const spec = "./local-cluster.ts";
      const mod = (await import(spec)) as typeof import("./local-cluster.ts");
      const cluster = await mod.startLocalCluster(options.cluster ?? {});
      try {
        const client = await Client.connect(cluster.address, options);
        client.#cluster = cluster;
        return client;
      } catch (error) {
        await cluster.close().catch(() => {});
        throw error;
      }
    }
    const client = new Client(address, options);
    await client.#openStream();
    client.#status = "running";
    return client;
  }

  /** The local cluster this client started (Client.connect() without an address), else undefined. */
  get cluster(): LocalClusterHandle | undefined {
    return this.#cluster;
  }

  get status(): string {
    return this.#status;
  }

  /** The wire dialect spoken with the scheduler ("2022" or "2026"), chosen at connect. */
  get dialect(): Dialect {
    return this.#dialect;
  }

  // --- stream -----------------------------------------------------------------------------

  /** The dialect for this connection: forced by options, else from the versions RPC. */
  async #detectDialect(): Promise<Dialect> {
    const forced = this.options.dialect ?? "auto";
    if (forced !== "auto") return forced;
    // The pool, not #rpc: the client is not "running" yet. An error reply (a scheduler without
    // the handler) means 2022; a connection failure propagates as the stream's own would.
    const reply = await this.#pool.call(this.address, { op: "versions" }).catch((error: unknown) => {
      if ((error as { code?: string }).code === "DASK_ERR_RPC_REMOTE") return null;
      throw error;
    });
    return dialectFromVersions(reply);
  }

  async #openStream(): Promise<void> {
    const connect = this.options.connect ?? registryConnect;
    this.#dialect = await this.#detectDialect();
    const comm = await connect(this.address, this.#connectOptions);
    try {
      comm.name = "Client->Scheduler";
      await comm.write({
        op: "register-client",
        client: this.id,
        reply: false,
        versions: { host: {}, packages: { "dask-wasm": "0.1.0" } },
      });
      const first = await comm.read();
      const start = Array.isArray(first) ? first[0] : first;
      if (getField(start, "op") !== "stream-start") {
        throw new DaskError("DASK_ERR_REGISTER_CLIENT", `the scheduler answered register-client with ${JSON.stringify(getField(start, "op") ?? null)}, not stream-start`);
      }
      const error = getField(start, "error");
      if (typeof error === "string" && error !== "") throw new DaskError("DASK_ERR_REGISTER_CLIENT", `the scheduler refused this client: ${error}`);
      // Anything batched after stream-start in the same message is a normal op.
      if (Array.isArray(first)) this.#dispatch(first.slice(1));
    } catch (error) {
      comm.abort();
      throw error;
    }
    this.#stream = comm;
    // Python's client batches its stream every 10 ms (§5.2).
    this.#batched = new BatchedSend({ intervalMs: 10 });
    this.#batched.start(comm);
    void this.#readStream(comm);
  }

  async #readStream(comm: Comm): Promise<void> {
    for (;;) {
      let msg: unknown;
      try {
        msg = await comm.read();
      } catch (error) {
        if (this.#stream === comm) this.#onStreamLost(error);
        return;
      }
      const batch = splitBatch(msg);
      this.#dispatch(batch.ops);
      if (batch.closeStream) {
        comm.abort();
        if (this.#stream === comm) this.#onStreamLost(new DaskError("DASK_ERR_SCHEDULER_LOST", "the scheduler closed the client stream"));
        return;
      }
    }
  }

  #dispatch(ops: unknown[]): void {
    for (const op of ops) {
      const name = getField(op, "op");
      if (name === "stream-closed") continue;
      if (name === "cancelled-keys") {
        // 2026's batched form of 2022's cancelled-key (the state speaks the 2022 op).
        const keys = getField(op, "keys");
        for (const key of Array.isArray(keys) ? keys : []) this.#wake(this.#state.handle({ op: "cancelled-key", key }));
        continue;
      }
      this.#wake(this.#state.handle(op));
    }
  }

  #wake(resolutions: Resolution[]): void {
    for (const r of resolutions) {
      const set = this.#waiters.get(r.id);
      if (!set) continue;
      this.#waiters.delete(r.id);
      for (const w of set) w();
    }
  }

  #send(...ops: StreamOp[]): void {
    if (this.#status !== "running" || !this.#batched || this.#batched.closed) return;
    this.#batched.send(...ops);
  }

  #renewLost(): void {
    this.#lost = new Promise<never>((_, reject) => (this.#rejectLost = reject));
    this.#lost.catch(() => {}); // observed by races only; never unhandled
  }

  #onStreamLost(cause: unknown): void {
    if (this.#status !== "running") return;
    this.#stream = undefined;
    this.#batched?.abort();
    this.#batched = undefined;
    this.#status = "reconnecting";
    const lost = new DaskError("DASK_ERR_SCHEDULER_LOST", `lost the scheduler at ${this.address}`, { cause });
    this.#rejectLost(lost);
    // As client.py _reconnect: every future is cancelled at once; nothing waits on a scheduler
    // that may never come back.
    this.#wake(this.#state.cancelAll("scheduler-lost"));
    void this.#pool.closeIdle();
    const deadline = Date.now() + (this.options.reconnectTimeoutMs ?? 30_000);
    void this.#reconnect(deadline);
  }

  async #reconnect(deadline: number): Promise<void> {
    while (this.#status === "reconnecting") {
      if (Date.now() >= deadline) {
        this.#closedReason = "scheduler-lost";
        await this.close();
        return;
      }
      try {
        await this.#openStream();
        if (this.#status !== "reconnecting") {
          this.#batched?.abort();
          return;
        }
        this.#status = "running";
        this.#renewLost();
        return;
      } catch {
        // Refused or timed out: try again shortly, until the deadline (client.py sleeps 0.1 s).
        await new Promise<void>((resolve) => {
          this.#reconnectTimer = setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now())));
        });
        this.#reconnectTimer = undefined;
      }
    }
  }

  #ensureRunning(): void {
    if (this.#status === "running") return;
    if (this.#status === "reconnecting" || this.#closedReason === "scheduler-lost") {
      throw new DaskError("DASK_ERR_SCHEDULER_LOST", `lost the scheduler at ${this.address}`);
    }
    throw new DaskError("DASK_ERR_CLIENT_CLOSED", "the client is closed");
  }

  /**
   * Waits until the stream has handed every buffered op to its comm. RPCs travel on other comms
   * and could otherwise overtake an update-graph still in the 10 ms batch (a cancel reaching
   * the scheduler before the task it cancels). Bounded by the batch interval.
   */
  async #flushStream(): Promise<void> {
    while (this.#status === "running" && this.#batched && !this.#batched.closed && this.#batched.planner.pending > 0) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** One RPC on a pooled comm; rejects with DASK_ERR_SCHEDULER_LOST if the scheduler goes away meanwhile. */
  async #rpc(request: RpcRequest): Promise<unknown> {
    this.#ensureRunning();
    return Promise.race([this.#pool.call(this.address, request), this.#lost]);
  }

  // --- futures ----------------------------------------------------------------------------

  #newFuture(key: string): { future: Future; isNew: boolean } {
    const isNew = this.#state.acquire(key);
    const future = new Future(key, this);
    this.#registry.register(future, keyId(key), future);
    return { future, isNew };
  }

  /** FutureHost: one handle released explicitly. */
  releaseHandle(future: Future): void {
    this.#registry.unregister(future);
    this.#dropRef(keyId(future.key));
  }

  #dropRef(id: string): void {
    const ops = this.#state.release(id);
    if (ops.length > 0) this.#send(...ops);
    // The last handle went while someone still awaited the key: wake them, they find no record.
    if (!this.#state.get(id)) this.#wake([{ id, status: "cancelled" }]);
  }

  futureStatus(key: Key): FutureStatus {
    return this.#state.get(key)?.status ?? "cancelled";
  }

  async waitKey(key: Key, timeoutMs?: number): Promise<FutureStatus> {
    const id = keyId(key);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const rec = this.#state.get(id);
      if (!rec) return "cancelled";
      if (rec.status === "finished" || rec.status === "error" || rec.status === "cancelled") return rec.status;
      await new Promise<void>((resolve, reject) => {
        let set = this.#waiters.get(id);
        if (!set) this.#waiters.set(id, (set = new Set()));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const wake = (): void => {
          if (timer !== undefined) clearTimeout(timer);
          resolve();
        };
        set.add(wake);
        if (deadline !== undefined) {
          timer = setTimeout(() => {
            this.#waiters.get(id)?.delete(wake);
            reject(new DaskError("DASK_ERR_TIMEOUT", `future ${JSON.stringify(key)} did not finish within ${timeoutMs} ms`));
          }, Math.max(0, deadline - Date.now()));
        }
      });
    }
  }

  /** The error a key ended with, or undefined; throws for a cancelled key (client.py raises CancelledError). */
  #errorOf(key: Key): Error | undefined {
    const rec = this.#state.get(key);
    if (!rec) return new DaskError("DASK_ERR_FUTURE_RELEASED", `future ${JSON.stringify(key)} was released`);
    if (rec.status === "error") return new TaskError(key, rec.exceptionText ?? "", rec.tracebackText ?? "");
    if (rec.status === "cancelled") {
      if (rec.reason === "scheduler-lost") return new DaskError("DASK_ERR_SCHEDULER_LOST", `lost the scheduler at ${this.address} before ${JSON.stringify(key)} finished`);
      if (rec.reason === "client-closed") return new DaskError("DASK_ERR_CLIENT_CLOSED", `the client closed before ${JSON.stringify(key)} finished`);
      return new DaskError("DASK_ERR_CANCELLED", `future ${JSON.stringify(key)} was cancelled${rec.reason === "restart" ? " (scheduler restart)" : ""}`);
    }
    return undefined;
  }

  async resultOf(key: Key, timeoutMs?: number): Promise<unknown> {
    await this.waitKey(key, timeoutMs);
    const error = this.#errorOf(key);
    if (error) throw error;
    const values = await this.#gatherKeys([key as string]);
    return values.get(key as string);
  }

  async exceptionOf(key: Key): Promise<Error | undefined> {
    await this.waitKey(key);
    const error = this.#errorOf(key);
    if (error === undefined || error instanceof TaskError) return error;
    throw error; // cancelled, released, scheduler lost: there is no task error to give

  }

  async cancelKeys(keys: Key[]): Promise<void> {
    this.#ensureRunning();
    this.#wake(this.#state.markCancelled(keys.map(keyId), "cancelled"));
    await this.#cancelOnScheduler(keys, false);
  }

  /**
   * 2022: the `cancel` RPC after flushing the stream (the update-graph must arrive first).
   * 2026: the `cancel-keys` stream op, ordered behind that update-graph by the stream itself.
   */
  async #cancelOnScheduler(keys: Key[], force: boolean): Promise<void> {
    if (this.#dialect === "2026") {
      this.#send(cancelOp2026(keys, force));
      await this.#flushStream();
      return;
    }
    await this.#flushStream();
    await this.#rpc({ op: "cancel", keys, client: this.id, force });
  }

  /** Values of finished keys from the scheduler's gather RPC; retries keys whose holders vanished. */
  async #gatherKeys(keys: string[]): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    let want = [...new Set(keys)];
    // dask's client retries a failed gather after report-key (the key is recomputed or re-found).
    for (let attempt = 0; want.length > 0; attempt++) {
      const reply = await this.#rpc({ op: "gather", keys: want });
      if (getField(reply, "status") === "OK") {
        for (const [k, v] of entries(getField(reply, "data"))) out.set(k, v);
        const missing = want.filter((k) => !out.has(k));
        if (missing.length > 0) throw new DaskError("DASK_ERR_GATHER", `gather answered without ${JSON.stringify(missing)}`);
        return out;
      }
      const missing = Object.keys(recordOf(getField(reply, "keys"), (x) => x));
      if (attempt >= 3) throw new DaskError("DASK_ERR_GATHER", `could not gather ${JSON.stringify(missing.length ? missing : want)} from their workers`);
      for (const k of missing) this.#send({ op: "report-key", key: k });
      // Wait for the scheduler's word on each missing key (lost-data -> recompute -> key-in-memory).
      for (const k of missing) {
        await this.waitKey(k);
        const error = this.#errorOf(k);
        if (error) throw error;
      }
      want = missing.length > 0 ? missing : want;
    }
    return out;
  }

  // --- submitting -------------------------------------------------------------------------

  /** Submits `fn(...args)`; futures among the args are dependencies. See submitWith for options. */
  submit(fn: string, ...args: unknown[]): Future {
    return this.submitWith(fn, args, {});
  }

  /** Submits `fn(...args)` with options (key, pure, kwargs, workers, resources, retries, priority). */
  submitWith(fn: string, args: unknown[], options: SubmitOptions = {}): Future {
    return this.#submitTasks(fn, [args], options, options.key === undefined ? undefined : [options.key])[0]!;
  }

  /** One task per item of `iterable` (each item is the single argument); one update-graph for all. */
  map(fn: string, iterable: Iterable<unknown>, options: Omit<SubmitOptions, "key"> & { keys?: string[] } = {}): Future[] {
    return this.#submitTasks(fn, [...iterable].map((x) => [x]), options, options.keys);
  }

  #submitTasks(fn: string, argLists: unknown[][], options: SubmitOptions, keys: string[] | undefined): Future[] {
    this.#ensureRunning();
    const ref = wireFunction(fn);
    const kwargsIn = options.kwargs;
    const futures: Future[] = [];
    const entriesOut: TaskEntry[] = [];
    for (let i = 0; i < argLists.length; i++) {
      const args = argLists[i]!;
      let key = keys?.[i];
      if (key === undefined) {
        // Pure tasks are named by their token, so resubmitting the same call shares the key
        // (and runs once); impure ones get a random token, as dask's pure=False.
        key = options.pure === false ? `${funcName(fn)}-${globalThis.crypto.randomUUID().replace(/-/g, "")}` : taskKey(fn, args, kwargsIn);
      }
      const entry = this.#taskEntry(key, ref, args, kwargsIn, []);
      const { future, isNew } = this.#newFuture(key);
      futures.push(future);
      const status = this.#state.get(key)!.status;
      // A key this client already holds (pending or done) is not sent again (client.py submit:
      // `if key in self.futures: return Future(key, self)`); a cancelled/erred one is resubmitted.
      if (isNew || status === "cancelled" || status === "error") {
        this.#wake(this.#state.resubmit(key));
        entriesOut.push(entry);
      }
    }
    if (entriesOut.length > 0) this.#send(this.#updateGraph(entriesOut, entriesOut.map((e) => e.key), options));
    return futures;
  }

  /**
   * One task in this connection's dialect. 2022: futures become their key strings, listed in
   * deps (the worker substitutes them). 2026: futures, and strings naming one of `keyDeps`
   * (a GraphSpec's dependencies), become TaskRefs, inside List/Dict containers when nested.
   */
  #taskEntry(key: string, fn: string, args: unknown[], kwargs: Record<string, unknown> | undefined, keyDeps: readonly string[]): TaskEntry {
    if (this.#dialect === "2026") {
      const named = new Set(keyDeps);
      const isRef = (v: unknown): Key | undefined => (v instanceof Future ? v.key : typeof v === "string" && named.has(v) ? v : undefined);
      const lowered = kwargs === undefined ? undefined : Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, lowerArg(v, isRef)]));
      return { key, wire2026: { key, fn, args: args.map((a) => lowerArg(a, isRef)), kwargs: lowered } };
    }
    const deps = new Set<string>(keyDeps);
    const wireArgs = replaceFutures(args, deps) as unknown[];
    const wireKwargs = kwargs === undefined ? undefined : (replaceFutures(kwargs, deps) as Record<string, unknown>);
    return { key, wire2022: { key, fn, args: wireArgs, kwargs: wireKwargs, deps: [...deps] } };
  }

  /** The update-graph op (§9.2 / MODERN-DELTA §9) for tasks, wanting `want`. */
  #updateGraph(tasks: TaskEntry[], want: string[], options: SubmitOptions): StreamOp {
    const res = options.resources === undefined ? (this.options.defaultResources === undefined ? { wasm: 1 } : this.options.defaultResources) : options.resources;
    const t2022: WireTask2022[] = [];
    const t2026: WireTask2026[] = [];
    for (const t of tasks) {
      if ("wire2022" in t) t2022.push(t.wire2022);
      else t2026.push(t.wire2026);
    }
    if (this.#dialect === "2022") {
      const o: GraphOptions2022 = { resources: res };
      if (options.workers !== undefined) o.workers = options.workers;
      if (options.allowOtherWorkers !== undefined) o.allowOtherWorkers = options.allowOtherWorkers;
      if (options.retries !== undefined) o.retries = options.retries;
      if (options.priority !== undefined) o.priority = options.priority;
      return encodeGraph2022(t2022, want, this.id, o);
    }
    // 2026 has no per-key restriction maps in update-graph: graph-wide annotations carry them
    // (dask.annotate's names). Not yet checked against a live 2026 scheduler.
    const annotations: Record<string, unknown> = {};
    if (res) annotations["resources"] = res;
    if (options.workers && options.workers.length > 0) {
      annotations["workers"] = options.workers;
      if (options.allowOtherWorkers) annotations["allow_other_workers"] = true;
    }
    if (options.retries) annotations["retries"] = options.retries;
    if (options.priority) annotations["priority"] = options.priority;
    // client.py submit uses a uuid as the LLGExpr token, so the scheduler never tokenizes.
    const token = globalThis.crypto.randomUUID().replace(/-/g, "");
    return encodeGraph2026(t2026, want, { token, annotations, spanMetadata: spanMetadata2026() });
  }

  /**
   * Submits a whole graph in one update-graph (C2's compute). Args already name their
   * dependencies by key; `deps` lists them. Returns a Future per wanted key.
   */
  submitGraph(graph: GraphSpec): Map<string, Future> {
    this.#ensureRunning();
    const out = new Map<string, Future>();
    const tasks: TaskEntry[] = [];
    for (const key of graph.keys) {
      const { future } = this.#newFuture(key);
      this.#wake(this.#state.resubmit(key));
      out.set(key, future);
    }
    for (const [key, t] of graph.tasks) tasks.push(this.#taskEntry(key, wireFunction(t.fn), t.args, t.kwargs, t.deps));
    const options: SubmitOptions = {};
    if (graph.resources !== undefined) options.resources = graph.resources;
    if (graph.workers !== undefined) options.workers = graph.workers;
    if (graph.retries !== undefined) options.retries = graph.retries;
    if (graph.priority !== undefined) options.priority = graph.priority;
    this.#send(this.#updateGraph(tasks, graph.keys, options));
    return out;
  }

  /**
   * Values of futures: a Future, or arrays / plain objects containing futures (same shape back).
   * Waits for every future; rejects with the first failure in argument order.
   * `progress`: a cli-progress bar while waiting (off by default in the library; on when true or
   * when DASK_WASM_PROGRESS=1, as the CLI sets it; src/client/progress.ts).
   */
  async gather(futures: unknown, options: { progress?: boolean | ProgressOptions } = {}): Promise<unknown> {
    const found: Future[] = [];
    const collect = (v: unknown, depth: number): void => {
      if (v instanceof Future) found.push(v);
      else if (depth < 64 && Array.isArray(v)) for (const x of v) collect(x, depth + 1);
      else if (depth < 64 && typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, depth + 1);
    };
    collect(futures, 0);
    for (const f of found) if (f.released) throw new DaskError("DASK_ERR_FUTURE_RELEASED", `future ${JSON.stringify(f.key)} was released`);
    if (found.length > 0 && options.progress !== false) {
      // Loaded only when asked for, so the client carries no terminal code when it is not.
      const { Progress, progressWanted } = await import("./progress.ts");
      const opts: ProgressOptions = typeof options.progress === "object" ? options.progress : { enabled: options.progress };
      if (progressWanted(opts.enabled)) {
        const bar = new Progress(found.length, { label: "gather", ...opts, enabled: true });
        try {
          await Promise.all(found.map((f) => this.waitKey(f.key).then(() => bar.tick())));
        } finally {
          bar.stop();
        }
      }
    }
    await Promise.all(found.map((f) => this.waitKey(f.key)));
    for (const f of found) {
      const error = this.#errorOf(f.key);
      if (error) throw error;
    }
    const values = await this.#gatherKeys(found.map((f) => f.key as string));
    const rebuild = (v: unknown, depth: number): unknown => {
      if (v instanceof Future) return values.get(v.key as string);
      if (depth < 64 && Array.isArray(v)) return v.map((x) => rebuild(x, depth + 1));
      if (depth < 64 && typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rebuild(x, depth + 1)]));
      }
      return v;
    };
    return rebuild(futures, 0);
  }

  /** Sends data to workers: an array gives one future per element, anything else one future. */
  async scatter(data: unknown, options: ScatterOptions = {}): Promise<Future | Future[]> {
    this.#ensureRunning();
    const many = Array.isArray(data);
    const values = many ? (data as unknown[]) : [data];
    const wire: Record<string, unknown> = {};
    const keys = values.map((v) => `${typeName(v)}-${tokenize(v)}`);
    values.forEach((v, i) => (wire[keys[i]!] = v));
    const futures = keys.map((k) => this.#newFuture(k).future);
    try {
      const reply = await this.#rpc({
        op: "scatter",
        data: wire,
        workers: options.workers ?? null,
        client: this.id,
        broadcast: options.broadcast ?? false,
        timeout: (this.options.connectTimeoutMs ?? 30_000) / 1000,
      });
      for (const k of strings(reply)) this.#wake(this.#state.markFinished(k));
    } catch (error) {
      for (const f of futures) f.release();
      throw error;
    }
    return many ? futures : futures[0]!;
  }

  /** Cancels futures (every handle on their keys). */
  async cancel(futures: Future | Future[]): Promise<void> {
    const list = Array.isArray(futures) ? futures : [futures];
    await this.cancelKeys(list.map((f) => f.key));
  }

  /** Copies the futures' data to `n` workers (all workers by default); waits for them first. */
  async replicate(futures: Future | Future[], n?: number): Promise<void> {
    const list = Array.isArray(futures) ? futures : [futures];
    await this.gatherWait(list);
    await this.#rpc({ op: "replicate", keys: list.map((f) => f.key), n: n ?? null, workers: null, branching_factor: 2 });
  }

  /** Waits until every future is done (finished, erred or cancelled); never rejects for task errors. */
  async gatherWait(futures: Future[]): Promise<void> {
    await Promise.all(futures.map((f) => this.waitKey(f.key)));
  }

  /** Which workers hold each key ({key: [addresses]}); all keys without an argument. */
  async whoHas(futures?: Future | Future[]): Promise<Record<string, string[]>> {
    const list = futures === undefined ? undefined : Array.isArray(futures) ? futures : [futures];
    const reply = await this.#rpc({ op: "who_has", keys: list ? list.map((f) => f.key) : null });
    return recordOf(reply, strings);
  }

  /** Keys per worker ({address: [keys]}). */
  async hasWhat(): Promise<Record<string, string[]>> {
    return recordOf(await this.#rpc({ op: "has_what", workers: null }), strings);
  }

  /** Threads per worker ({address: nthreads}). */
  async ncores(): Promise<Record<string, number>> {
    return recordOf(await this.#rpc({ op: "ncores", workers: null }), Number);
  }

  /**
   * This client's part of a reset (DaskDistributedDispatcher.jl `reset!`): every key it holds is
   * cancelled on the scheduler, so workers drop the data nobody else wants, and every Future
   * of this client rejects DASK_ERR_CANCELLED. Workers stay registered, unlike `restart`.
   */
  async reset(): Promise<void> {
    this.#ensureRunning();
    const keys = this.#state.ids().map((id) => this.#state.get(id)!.key);
    this.#wake(this.#state.cancelAll("cancelled"));
    if (keys.length > 0) await this.#cancelOnScheduler(keys, true);
  }

  /**
   * The scheduler's `restart` RPC: every task and key on the cluster is cleared and every
   * client's futures are cancelled. Note (scheduler.py 2022.12 `restart`): workers without a
   * nanny, which includes dask-wasm workers, are removed rather than restarted, so with
   * `waitForWorkers` (default true, as dask) the call fails after `timeoutMs` unless something
   * starts them again. `reset()` clears this client's keys and keeps the workers.
   */
  async restart(options: { timeoutMs?: number; waitForWorkers?: boolean } = {}): Promise<void> {
    this.#ensureRunning();
    this.#wake(this.#state.cancelAll("restart"));
    await this.#flushStream();
    await this.#rpc(restartOp(this.#dialect, (options.timeoutMs ?? 30_000) / 1000, options.waitForWorkers ?? true, `client-restart-${Date.now() / 1000}`));
  }

  // --- datasets ---------------------------------------------------------------------------

  /**
   * Publishes a value under `name`: futures (one or an array) keep their keys alive on the
   * scheduler for as long as the dataset exists; anything else is stored as plain data (a
   * Python client reads it as the equivalent Python value).
   */
  async publishDataset(name: string, value: unknown, options: { override?: boolean } = {}): Promise<void> {
    const futures = value instanceof Future ? [value] : Array.isArray(value) && value.length > 0 && value.every((v) => v instanceof Future) ? (value as Future[]) : undefined;
    const keys = futures ? futures.map((f) => f.key) : [];
    const data = futures ? { [FUTURES_TAG]: keys, single: value instanceof Future } : value;
    await this.#flushStream(); // the futures' update-graph first, so the scheduler knows their keys
    if (this.#dialect === "2026") {
      // The scheduler stores the dataset only once the flush op with the same uid has arrived.
      const { flush, put } = publishOps2026(name, keys, data, options.override ?? false, this.id, newUid());
      this.#send(flush);
      await this.#flushStream();
      await this.#rpc(put);
      return;
    }
    await this.#rpc({ op: "publish_put", keys, name, data, override: options.override ?? false, client: this.id });
  }

  /** The published value; futures come back as Futures of this client. Rejects DASK_ERR_DATASET_MISSING. */
  async getDataset(name: string): Promise<unknown> {
    const reply = this.#dialect === "2026"
      ? firstOf(await this.#rpc({ op: "publish_get", names: [name] }))
      : await this.#rpc({ op: "publish_get", name, client: this.id });
    if (reply === null || reply === undefined) throw new DaskError("DASK_ERR_DATASET_MISSING", `no dataset named ${JSON.stringify(name)}`);
    const data = getField(reply, "data");
    const tagged = getField(data, FUTURES_TAG);
    if (Array.isArray(tagged)) {
      const fs = this.#adopt(tagged.map(String));
      return getField(data, "single") === true ? fs[0] : fs;
    }
    // Published by Python with futures inside: the pickle names distributed.Future, which our
    // reader does not execute; the scheduler's `keys` still say which keys it holds.
    const keys = strings(getField(reply, "keys"));
    if (keys.length > 0 && (typeof data !== "object" || data === null || "header" in data)) {
      const fs = this.#adopt(keys);
      return fs.length === 1 ? fs[0] : fs;
    }
    return data;
  }

  async listDatasets(): Promise<string[]> {
    return strings(await this.#rpc({ op: "publish_list" }));
  }

  async unpublishDataset(name: string): Promise<void> {
    if (this.#dialect === "2026") {
      const uid = newUid();
      this.#send({ op: "publish_flush_batched_send", uid });
      await this.#flushStream();
      await this.#rpc({ op: "publish_delete", names: [name], client: this.id, uid });
      return;
    }
    await this.#rpc({ op: "publish_delete", name });
  }

  /** Futures for keys someone else created: tell the scheduler we want them (client-desires-keys). */
  #adopt(keys: string[]): Future[] {
    const fs = keys.map((k) => this.#newFuture(k).future);
    this.#send({ op: "client-desires-keys", keys, client: this.id });
    return fs;
  }

  // --- closing ----------------------------------------------------------------------------

  /** Releases every key, closes the stream and pooled comms (and a local cluster started for this client). */
  async close(): Promise<void> {
    if (this.#status === "closing" || this.#status === "closed") return;
    this.#status = "closing";
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    const batched = this.#batched;
    if (batched && !batched.closed) {
      // client.py _close: close-client then close-stream on the stream (vec:0139).
      batched.send({ op: "close-client" }, { op: "close-stream" });
      await batched.close().catch(() => {});
    }
    this.#stream = undefined;
    this.#rejectLost(new DaskError("DASK_ERR_CLIENT_CLOSED", "the client is closed"));
    this.#wake(this.#state.cancelAll(this.#closedReason));
    await this.#pool.close().catch(() => {});
    this.#status = "closed";
    const cluster = this.#cluster;
    this.#cluster = undefined;
    if (cluster) await cluster.close();
  }

  /** Shuts the scheduler down (terminate RPC; it stops its workers' streams), then closes. */
  async shutdown(): Promise<void> {
    if (this.#status === "running") {
      const comm = this.#stream;
      this.#stream = undefined; // the stream breaking now is expected, not a lost scheduler
      try {
        await Promise.race([this.#pool.call(this.address, { op: "terminate" }), this.#lost]);
      } catch {
        // the scheduler may drop the comm while terminating: that is the point
      }
      if (comm) this.#batched?.abort();
      this.#batched = undefined;
    }
    await this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
