// A Comm over any ordered byte stream: bytes -> FrameSource -> frames -> codec.loads -> message,
// and back. TCP (tcp.node.ts) wraps a net.Socket in a ByteTransport; a WebSocket comm can reuse
// this with its own Framing. Model: distributed/comm/tcp.py `TCP.read/write`.
// This module does no IO itself: it owns no sockets and no timers, only calls the transport.
// Failure policy (DASK-PROTOCOL §2, issue brief): bad bytes close THIS comm with a coded
// ProtocolError that every pending and later read() rejects with; nothing is thrown upward.
import type { DaskError } from "../errors.ts";
import type { Comm, Framing, FrameSource, HandshakeInfo, MessageCodec } from "./comm.ts";
import { asProtocolError, commClosed } from "./comm.ts";
import { MessageQueue } from "./queue.ts";

/** What a framed comm needs from the transport below it. */
export interface ByteTransport {
  /** Writes the chunks in order; resolves once they are handed to the OS (or buffered with backpressure respected). */
  write(chunks: Uint8Array[]): Promise<void>;
  /** Half-close after flushing (TCP FIN). */
  end(): void;
  /** Drop the connection now. */
  destroy(): void;
}

export interface FramedCommInit {
  transport: ByteTransport;
  framing: Framing;
  codec: MessageCodec;
  localAddress: string;
  peerAddress: string;
  name?: string;
}

export class FramedComm implements Comm {
  readonly localAddress: string;
  readonly peerAddress: string;
  handshakeInfo: HandshakeInfo | undefined;
  name: string;
  #transport: ByteTransport;
  #framing: Framing;
  #codec: MessageCodec;
  #reader: FrameSource;
  #queue = new MessageQueue();
  #closed = false;
  /** Why the comm ended, once it has; writes reject with it. */
  #reason: DaskError | undefined;

  constructor(init: FramedCommInit) {
    this.#transport = init.transport;
    this.#framing = init.framing;
    this.#codec = init.codec;
    this.#reader = init.framing.createReader();
    this.localAddress = init.localAddress;
    this.peerAddress = init.peerAddress;
    this.name = init.name ?? "";
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Transport -> comm: a chunk of bytes arrived. Decodes every message it completes. */
  receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    try {
      this.#reader.push(chunk);
      for (let frames = this.#reader.next(); frames !== null; frames = this.#reader.next()) {
        this.#queue.push(this.#codec.loads(frames));
      }
    } catch (error) {
      // Malformed prelude, a frame above the limits, undecodable msgpack: this comm is done.
      this.#fail(asProtocolError(error, `bad message from ${this.peerAddress}`), true);
    }
  }

  /** Transport -> comm: the peer closed (EOF) or the socket errored. */
  ended(cause?: unknown): void {
    if (this.#closed) return;
    this.#fail(commClosed(`${this.peerAddress} ${cause ? "errored" : "closed the connection"}`, cause), false);
  }

  read(): Promise<unknown> {
    return this.#queue.shift();
  }

  async write(msg: unknown): Promise<void> {
    if (this.#closed) throw this.#reason ?? commClosed(`write to ${this.peerAddress} after close`);
    // Compression applies to sub-frames only and only once negotiated (§3.1); the handshake
    // itself is written before handshakeInfo exists, hence the null default.
    const frames = this.#codec.dumps(msg, { compression: this.handshakeInfo?.compression ?? null });
    await this.#transport.write(this.#framing.pack(frames));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#reason = commClosed(`closed locally (${this.peerAddress})`);
    this.#queue.fail(this.#reason);
    this.#transport.end();
  }

  abort(): void {
    if (this.#closed) return;
    this.#fail(commClosed(`aborted locally (${this.peerAddress})`), true);
  }

  #fail(reason: DaskError, destroy: boolean): void {
    this.#closed = true;
    this.#reason = reason;
    this.#queue.fail(reason);
    if (destroy) {
      this.#queue.clear();
      this.#transport.destroy();
    } else {
      this.#transport.end();
    }
  }
}
