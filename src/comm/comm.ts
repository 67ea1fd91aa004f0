// The one Comm interface every transport implements (TCP here; WebSocket and the gateway's relay
// later), the codec seams a framed transport plugs into, and the comm family's coded errors.
// Model: distributed/comm/core.py `Comm`, `Listener`. Pure: types and error classes only, no IO;
// nothing here knows about sockets, timers or a particular msgpack implementation.
import { DaskError, ProtocolError } from "../errors.ts";

/** What both ends agreed on in the handshake (distributed comm/core.py `handshake_configuration`). */
export interface HandshakeInfo {
  /** Negotiated compression: the common value if both sides sent the same string, else null. */
  readonly compression: string | null;
  /** min(local, remote) "pickle-protocol"; Python peers pickle for us with it. */
  readonly pickleProtocol: number;
  /** The peer's handshake map as it arrived (e.g. its "python" version), informational. */
  readonly remote: Readonly<Record<string, unknown>>;
}

/**
 * A bidirectional message channel to one peer. Messages are whole dask messages (frame 0 decoded
 * plus its sub-frames), never bytes. `read()` rejects with a DaskError once the comm is closed,
 * either locally, by the peer (DASK_ERR_COMM_CLOSED) or because the peer sent bytes we refuse
 * (a ProtocolError; the comm is closed, nothing else is). Reads and writes are each sequential:
 * callers must not start a second read before the first settles (dask's own rule, core.py).
 */
export interface Comm {
  read(): Promise<unknown>;
  write(msg: unknown): Promise<void>;
  /** Closes politely (flushes what was written) and rejects pending reads. Idempotent. */
  close(): Promise<void>;
  /** Closes at once, dropping unwritten bytes (distributed `Comm.abort`). Idempotent. */
  abort(): void;
  readonly closed: boolean;
  readonly localAddress: string;
  readonly peerAddress: string;
  /** Set once the handshake is done; undefined before it. */
  handshakeInfo: HandshakeInfo | undefined;
  /** Free-form label for logs ("ConnectionPool.identity", "Scheduler->Client"). */
  name: string;
}

/** Handle to a listening endpoint. */
export interface Listener {
  /** The bound address, with the real port when port 0 was asked for. */
  readonly address: string;
  /** Stops accepting; comms already handed out stay open (distributed `Listener.stop`). */
  close(): Promise<void>;
}

/**
 * Message codec a framed transport uses: message <-> list of frames. Implemented over
 * src/protocol/serialize.ts (`dumps`/`loads`) by comm/wire.ts; tests may pass another.
 * `loads` may throw a DaskError for undecodable input: the comm turns that into a closed comm.
 */
export interface MessageCodec {
  dumps(msg: unknown, context: { compression: string | null }): Uint8Array[];
  loads(frames: Uint8Array[]): unknown;
}

/** Incremental reader of one transport's framing (src/protocol/frames.ts FrameReader). */
export interface FrameSource {
  push(chunk: Uint8Array): void;
  /** One complete message's frames, or null when more bytes are needed. Throws a DaskError on bad input. */
  next(): Uint8Array[] | null;
}

/** Transport framing: a reader factory and how frames become bytes on the wire. */
export interface Framing {
  createReader(): FrameSource;
  /** Chunks to write, in order, for one message (one buffer for small ones, prelude + frames for big ones). */
  pack(frames: Uint8Array[]): Uint8Array[];
}

/** Size limits handed through to the frame reader (names as in src/protocol/frames.ts). */
export interface FrameLimits {
  maxFrameBytes?: number;
  maxMessageBytes?: number;
  maxFrames?: number;
}

/** Options shared by connect() and listen(). */
export interface CommOptions {
  /** Overall time for connect + handshake, ms (distributed.comm.timeouts.connect = 30 s). */
  timeoutMs?: number;
  /** Keys merged over our default handshake map (`handshake_overrides` in Python). */
  handshakeOverrides?: Record<string, unknown>;
  /** Frame/message size limits for the reader. */
  limits?: FrameLimits;
  /** Replace the default codec (tests, or a scheduler-style comm that keeps Serialized opaque). */
  codec?: MessageCodec;
  /** Replace the default framing factory (tests). */
  framing?: (limits: FrameLimits | undefined) => Framing;
  /** Where a listener reports a comm that failed before it was handed out (bad handshake). */
  onError?: (error: unknown) => void;
}

/** Called by a listener with every comm whose handshake succeeded. */
export type CommHandler = (comm: Comm) => void | Promise<void>;

// --- errors -------------------------------------------------------------------------------

/** Connection-level failures: closed, refused, timed out, bad address, bad handshake. */
export class CommError extends DaskError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "CommError";
  }
}

/**
 * A peer answered an RPC with `{"status": "uncaught-error", ...}` (core.py `error_message`).
 * We cannot unpickle the exception, so the text fields are what we carry.
 */
export class RemoteError extends DaskError {
  readonly exceptionText: string;
  readonly tracebackText: string;
  readonly reply: unknown;
  constructor(op: string, exceptionText: string, tracebackText: string, reply: unknown) {
    super("DASK_ERR_RPC_REMOTE", `remote ${op} failed: ${exceptionText || "(no exception_text)"}`);
    this.name = "RemoteError";
    this.exceptionText = exceptionText;
    this.tracebackText = tracebackText;
    this.reply = reply;
  }
}

export function commClosed(where: string, cause?: unknown): CommError {
  return new CommError("DASK_ERR_COMM_CLOSED", `comm closed: ${where}`, cause === undefined ? undefined : { cause });
}

/** Any non-DaskError thrown while decoding becomes a ProtocolError, so callers see one family. */
export function asProtocolError(error: unknown, what: string): DaskError {
  if (error instanceof DaskError) return error;
  return new ProtocolError("DASK_ERR_COMM_DECODE", `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
