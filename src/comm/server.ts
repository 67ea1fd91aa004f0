// A dask Server (distributed/core.py `Server._handle_comm`, `handle_stream`): listens, and on
// each comm reads requests {"op": ..., **kwargs} and dispatches `handlers[op]`; a comm turned
// into a batched stream dispatches `streamHandlers[op]` per op with no replies.
// Wire rules (DASK-PROTOCOL §5): reserved keys "reply" (default true), "serializers", "close"
// are popped; an unknown op is logged once and answered with nil (the comm stays usable); a
// handler exception is answered with an "uncaught-error" map carrying exception_text and
// traceback_text (§10.2: a str `exception` reaches Python clients as Exception(str)).
// IO shell: it owns its listeners and the comms they hand it; handlers own everything else.
import type { Comm, CommOptions, Listener } from "./comm.ts";
import { listen as registryListen } from "./registry.ts";
import { splitBatch } from "./batched.ts";

/** Returned by a handler that wrote its own reply (get_data) or must not reply. Python's `Status.dont_reply`. */
export const NO_REPLY: unique symbol = Symbol("dask-wasm.no-reply");

export interface HandlerContext {
  comm: Comm;
  server: Server;
  /** "serializers" from the request, when the caller sent it (get_data, gather). */
  serializers: unknown;
}

/** An RPC handler: keyword arguments in (reserved keys removed), reply value out. */
export type RpcHandler = (args: Record<string, unknown>, ctx: HandlerContext) => unknown | Promise<unknown>;

/** A stream handler: one op's fields plus the stream's context keys; no reply. */
/** Synchronous handlers run in order; a returned promise runs in the background (see handleStream). */
export type StreamHandler = (msg: Record<string, unknown>, ctx: { comm: Comm; server: Server }) => void | Promise<void>;

export interface ServerOptions {
  handlers?: Record<string, RpcHandler>;
  streamHandlers?: Record<string, StreamHandler>;
  /** Logging sink (default: none). Levels as Python's logger. */
  log?: (level: "debug" | "info" | "warning" | "error", message: string, error?: unknown) => void;
  /** Reply to `identity` (default `{"type": "Server", "id": id}`). */
  identity?: () => Record<string, unknown>;
  id?: string;
}

const RESERVED = new Set(["op", "reply", "serializers", "close"]);

function asRecord(msg: Record<string, unknown> | Map<unknown, unknown>): Record<string, unknown> {
  if (!(msg instanceof Map)) return msg;
  const out: Record<string, unknown> = {};
  for (const [k, v] of msg) if (typeof k === "string") out[k] = v;
  return out;
}

/** The "uncaught-error" reply for a thrown value (core.py `error_message`, text fields only). */
export function errorReply(error: unknown): Record<string, unknown> {
  const e = error instanceof Error ? error : new Error(String(error));
  const exceptionText = `${e.name}: ${e.message}`;
  return {
    status: "uncaught-error",
    exception: exceptionText,
    traceback: null,
    exception_text: exceptionText,
    traceback_text: e.stack ?? "",
  };
}

export class Server {
  readonly id: string;
  readonly handlers: Record<string, RpcHandler>;
  readonly streamHandlers: Record<string, StreamHandler>;
  #log: NonNullable<ServerOptions["log"]>;
  #identity: () => Record<string, unknown>;
  #listeners: Listener[] = [];
  /** Every comm being served, so `close` can end them. */
  readonly comms = new Set<Comm>();
  /** Unknown ops already logged: log once per op, not once per request. */
  #unknownLogged = new Set<string>();
  #closed = false;

  constructor(opts: ServerOptions = {}) {
    // Python names servers "<Class>-<uuid4>"; crypto.randomUUID exists on Node, browsers and workerd.
    this.id = opts.id ?? `Server-${globalThis.crypto.randomUUID()}`;
    this.#log = opts.log ?? (() => {});
    this.#identity = opts.identity ?? (() => ({ type: "Server", id: this.id }));
    // Built-ins every dask Server answers (core.py Server.__init__), overridable.
    this.handlers = {
      identity: () => this.#identity(),
      echo: (args) => args["data"],
      connection_stream: (_args, ctx) => {
        void this.handleStream(ctx.comm);
        return NO_REPLY;
      },
      ...opts.handlers,
    };
    this.streamHandlers = { ...opts.streamHandlers };
  }

  /** Bound addresses, in listen order. */
  get addresses(): string[] {
    return this.#listeners.map((l) => l.address);
  }

  /** Listens on `address` ("tcp://127.0.0.1:0" for any port); resolves with the bound address. */
  async listen(address: string, opts: CommOptions = {}): Promise<string> {
    const listener = await registryListen(address, (comm) => this.handleComm(comm), {
      ...opts,
      onError: opts.onError ?? ((error) => this.#log("info", `connection from a peer failed before serving`, error)),
    });
    this.#listeners.push(listener);
    return listener.address;
  }

  /** Serves RPCs on one comm until it closes (also usable on comms from `connect`). */
  async handleComm(comm: Comm): Promise<void> {
    this.comms.add(comm);
    try {
      for (;;) {
        let msg: unknown;
        try {
          msg = await comm.read();
        } catch (error) {
          // Peer went away or sent bad bytes: the comm is already closed, nothing else to do.
          if (!this.#closed) this.#log("debug", `comm from ${comm.peerAddress} ended`, error);
          return;
        }
        if (typeof msg !== "object" || msg === null || Array.isArray(msg) || msg instanceof Uint8Array) {
          // Python raises TypeError("Bad message type") out of its loop, dropping the comm.
          this.#log("warning", `bad message type from ${comm.peerAddress}; closing`);
          comm.abort();
          return;
        }
        // Reserved keys are read here and never reach handlers (core.py pops them the same way).
        const args = asRecord(msg as Record<string, unknown>);
        const op = args["op"];
        const reply = args["reply"] !== false;
        const closeAfter = args["close"] === true;
        const serializers = args["serializers"];
        if (op === "close") {
          // {"op": "close", "reply": true} -> "OK" then close (§5.1).
          if (reply) await comm.write("OK").catch(() => {});
          await comm.close();
          return;
        }
        const handler = typeof op === "string" ? this.handlers[op] : undefined;
        let result: unknown;
        if (!handler) {
          const name = String(op);
          if (!this.#unknownLogged.has(name)) {
            this.#unknownLogged.add(name);
            this.#log("warning", `No handler ${name} found in ${this.id}`);
          }
          result = null;
        } else {
          const kwargs: Record<string, unknown> = {};
          for (const k of Object.keys(args)) if (!RESERVED.has(k)) kwargs[k] = args[k];
          try {
            result = await handler(kwargs, { comm, server: this, serializers });
          } catch (error) {
            this.#log("error", `handler ${String(op)} failed`, error);
            result = errorReply(error);
          }
        }
        if (result === NO_REPLY) {
          // The handler owns the comm now (a stream) or wrote its own reply.
          if (op === "connection_stream") return;
          continue;
        }
        // A handler may have closed the comm (e.g. terminate); then there is no one to answer.
        if (reply && !comm.closed) {
          try {
            await comm.write(result === undefined ? null : result);
          } catch (error) {
            this.#log("debug", `reply to ${String(op)} could not be written`, error);
            return;
          }
        }
        if (closeAfter) {
          await comm.close();
          return;
        }
      }
    } finally {
      if (this.#streaming.has(comm)) {
        // handleStream took over; it removes the comm when the stream ends
      } else {
        this.comms.delete(comm);
      }
    }
  }

  /** Comms handed from the RPC loop to handleStream: the RPC loop must not forget them on exit. */
  #streaming = new Set<Comm>();

  /**
   * Serves a batched stream until close-stream or the comm ends (core.py `handle_stream`).
   * `extra` keys are merged under each op (a key of the same name in the op wins), e.g.
   * `{worker: address}`. A synchronous stream handler that throws, or an op without a handler,
   * ends the stream, as on the Python scheduler (§5.2): the peer must treat the stream as
   * broken. Handlers returning a promise run in the background, like Python's coroutine
   * handlers: the next op is dispatched without waiting, and a rejection is only logged.
   */
  async handleStream(comm: Comm, extra: Record<string, unknown> = {}): Promise<void> {
    this.comms.add(comm);
    this.#streaming.add(comm);
    try {
      for (;;) {
        let msg: unknown;
        try {
          msg = await comm.read();
        } catch {
          return;
        }
        const batch = splitBatch(msg);
        if (batch.invalid.length > 0) {
          this.#log("error", `stream from ${comm.peerAddress} sent non-map elements; closing`);
          comm.abort();
          return;
        }
        for (const raw of batch.ops) {
          const op = asRecord(raw);
          const name = op["op"];
          if (name === undefined || name === null || name === "") {
            // core.py: a falsy op is logged as an "odd message" and skipped, not fatal.
            this.#log("error", `odd message on the stream from ${comm.peerAddress}`);
            continue;
          }
          const handler = this.streamHandlers[String(name)];
          if (!handler) {
            // Python's stream_handlers[op] raises KeyError, which ends the stream.
            this.#log("error", `no stream handler ${String(name)} in ${this.id}; closing the stream`);
            comm.abort();
            return;
          }
          const fields: Record<string, unknown> = { ...extra };
          for (const k of Object.keys(op)) if (k !== "op") fields[k] = op[k];
          let result: void | Promise<void>;
          try {
            result = handler(fields, { comm, server: this });
          } catch (error) {
            this.#log("error", `stream handler ${String(name)} failed; closing the stream`, error);
            comm.abort();
            return;
          }
          if (result instanceof Promise) {
            // As core.py does with coroutine handlers: run in the background, do not hold up
            // the ops behind it; a failure is logged, and the stream goes on.
            result.catch((error: unknown) => this.#log("error", `stream handler ${String(name)} failed (background)`, error));
          }
        }
        if (batch.closeStream) {
          await comm.close();
          return;
        }
      }
    } finally {
      this.#streaming.delete(comm);
      this.comms.delete(comm);
    }
  }

  /** Stops listening and closes every comm being served. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#listeners.map((l) => l.close()));
    this.#listeners = [];
    for (const comm of this.comms) comm.abort();
    this.comms.clear();
  }
}
