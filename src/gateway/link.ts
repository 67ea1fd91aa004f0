// The worker's end of the gateway (browser tab, edge function): one WebSocket to
// `dask-wasm gateway`, many channels over it (mux.ts), each one a TCP connection the gateway
// holds on the worker's behalf. `link.backend` is a comm Backend for the "tcp" scheme: connect
// opens a channel to that address, listen asks the gateway to listen for this worker and hands
// out a comm per accepted peer. Each channel is a FramedComm with the ordinary TCP framing, so
// the worker, its handshake and its codec are the very ones a Node worker runs over a socket.
//
// IO: the one WebSocket. Must not: parse dask messages (FramedComm does), let one channel's
// failure close another, or throw from an event handler. A malformed gateway message closes the
// whole link with a coded error (every channel ends); the gateway is trusted not to send one.
import { DaskError } from "../errors.ts";
import { CommError, type Comm, type CommOptions, type Listener } from "../comm/comm.ts";
import { FramedComm } from "../comm/framed.ts";
import { formatAddress, type ParsedAddress } from "../comm/address.ts";
import type { Backend } from "../comm/registry.ts";
import { DEFAULT_CODEC, tcpFraming } from "../comm/wire.ts";
import { messageBytes, openWebSocket, type WebSocketFactory, type WebSocketLike } from "../comm/ws.ts";
import { decodeMux, encodeMux, MuxType, muxText, muxTypeName } from "./mux.ts";

/** Largest DATA payload this side sends (the gateway accepts WS messages up to 64 MiB). */
export const MAX_DATA_BYTES = 1024 * 1024;
/** Bytes queued on the WebSocket above which channel writes wait. */
export const HIGH_WATER_BYTES = 8 * 1024 * 1024;
const DRAIN_POLL_MS = 2;

interface Pending {
  resolve: (payload: Uint8Array) => void;
  reject: (error: Error) => void;
}

/** Channel traffic counters (the volunteer page shows them). */
export interface LinkStats {
  channelsOpen: number;
  bytesIn: number;
  bytesOut: number;
}

export class GatewayLink {
  readonly url: string;
  /** Resolves when the WebSocket has closed, with why. */
  readonly closed: Promise<DaskError>;
  #ws: WebSocketLike;
  #nextChannel = 1; // ours are odd
  #pending = new Map<number, Pending>();
  #comms = new Map<number, FramedComm>();
  #onAccept: ((comm: FramedComm) => void) | undefined;
  #acceptOptions: CommOptions = {};
  #isClosed = false;
  #resolveClosed!: (e: DaskError) => void;
  #stats = { bytesIn: 0, bytesOut: 0 };

  private constructor(ws: WebSocketLike, url: string) {
    this.#ws = ws;
    this.url = url;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    ws.addEventListener("message", (e) => this.#onMessage(e.data));
    ws.addEventListener("close", (e) => this.#shutdown(new CommError("DASK_ERR_GATEWAY_CLOSED", `the gateway connection closed (code ${e.code ?? "?"}${e.reason ? `: ${e.reason}` : ""})`)));
    ws.addEventListener("error", (e) => this.#shutdown(new CommError("DASK_ERR_GATEWAY_CLOSED", `the gateway connection failed: ${e.message ?? "error event"}`)));
  }

  /** Opens the WebSocket to the gateway's worker endpoint ("ws://host:port/worker"). */
  static async open(url: string, factory?: WebSocketFactory): Promise<GatewayLink> {
    return new GatewayLink(await openWebSocket(url, factory), url);
  }

  get stats(): LinkStats {
    return { channelsOpen: this.#comms.size, ...this.#stats };
  }

  /** The "tcp" transport for the comm registry (registerBackend("tcp", link.backend)). */
  get backend(): Backend {
    return {
      connect: (a, o) => this.connect(a, o),
      listen: (_a, onComm, o) => this.listen(onComm, o),
    };
  }

  async connect(address: ParsedAddress, opts: CommOptions = {}): Promise<Comm> {
    const target = formatAddress(address);
    const channel = this.#channel();
    // Registered before OPEN goes out: a dask listener writes its handshake at once, and that
    // DATA can be dispatched in the same turn as OPENED (one TCP read, several WS messages),
    // before this function resumes; it must find the comm, not be dropped as a closed channel's tail.
    const comm = this.#comm(channel, `gateway:${channel}`, target, opts);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const opened = this.#request(channel, encodeMux(MuxType.OPEN, channel, target));
      if (opts.timeoutMs === undefined) {
        await opened;
      } else {
        // Our own deadline (the registry's cannot abort a comm it never received): give the
        // channel up; a late OPENED is answered with CLOSE, so the gateway drops the socket.
        await Promise.race([
          opened,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              this.#pending.delete(channel);
              this.#closeChannel(channel, "connect timed out");
              reject(new CommError("DASK_ERR_COMM_TIMEOUT", `gateway: opening ${target} did not finish within ${opts.timeoutMs} ms`));
            }, opts.timeoutMs);
          }),
        ]);
      }
    } catch (e) {
      this.#comms.delete(channel);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return comm;
  }

  /** Asks the gateway to listen for this worker; resolves with the address it registered. */
  async listen(onComm: (comm: Comm) => void, opts: CommOptions = {}): Promise<Listener> {
    if (this.#onAccept) throw new CommError("DASK_ERR_COMM_LISTEN", "this gateway link already listens (one address per worker)");
    const channel = this.#channel();
    this.#onAccept = onComm;
    this.#acceptOptions = opts;
    let address: string;
    try {
      address = muxText(await this.#request(channel, encodeMux(MuxType.LISTEN, channel)));
    } catch (e) {
      this.#onAccept = undefined;
      throw e;
    }
    return {
      address,
      close: async () => {
        this.#onAccept = undefined;
      },
    };
  }

  /** Closes the WebSocket; the gateway then closes every TCP connection and the listener. */
  close(): void {
    if (this.#isClosed) return;
    this.#ws.close(1000, "worker left");
    this.#shutdown(new CommError("DASK_ERR_GATEWAY_CLOSED", "the worker closed its gateway connection"));
  }

  #channel(): number {
    const c = this.#nextChannel;
    this.#nextChannel += 2;
    return c;
  }

  #request(channel: number, message: Uint8Array): Promise<Uint8Array> {
    if (this.#isClosed) return Promise.reject(new CommError("DASK_ERR_GATEWAY_CLOSED", "the gateway connection is closed"));
    return new Promise((resolve, reject) => {
      this.#pending.set(channel, { resolve, reject });
      this.#send(message);
    });
  }

  /**
   * Backpressure: while the WebSocket has more than HIGH_WATER_BYTES queued, writers wait (the
   * platform WebSocket has no drain event, so its queue is polled). A runtime that does not
   * report bufferedAmount (0/undefined) never waits.
   */
  async #drained(): Promise<void> {
    const ws = this.#ws as { bufferedAmount?: number };
    while (!this.#isClosed && (ws.bufferedAmount ?? 0) > HIGH_WATER_BYTES) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }

  #send(message: Uint8Array): void {
    this.#stats.bytesOut += message.length;
    this.#ws.send(message);
  }

  #comm(channel: number, local: string, peer: string, opts: CommOptions): FramedComm {
    const comm = new FramedComm({
      transport: {
        write: async (chunks) => {
          if (this.#isClosed || !this.#comms.has(channel)) throw new CommError("DASK_ERR_COMM_CLOSED", `comm closed: gateway channel ${channel} to ${peer}`);
          // Bounded DATA messages: a 100 MB frame must not become one WS message (the gateway's
          // per-message limit) nor hold up every other channel behind it.
          for (const c of chunks) {
            for (let at = 0; at < c.length; at += MAX_DATA_BYTES) {
              this.#send(encodeMux(MuxType.DATA, channel, c.subarray(at, at + MAX_DATA_BYTES)));
              await this.#drained();
            }
          }
        },
        end: () => this.#closeChannel(channel, ""),
        destroy: () => this.#closeChannel(channel, "aborted"),
      },
      framing: (opts.framing ?? tcpFraming)(opts.limits),
      codec: opts.codec ?? DEFAULT_CODEC,
      localAddress: local,
      peerAddress: peer,
    });
    this.#comms.set(channel, comm);
    return comm;
  }

  #closeChannel(channel: number, reason: string): void {
    if (!this.#comms.delete(channel)) return;
    if (!this.#isClosed) this.#send(encodeMux(MuxType.CLOSE, channel, reason));
  }

  #onMessage(data: unknown): void {
    const bytes = messageBytes(data);
    try {
      if (!bytes) throw new CommError("DASK_ERR_GATEWAY_MESSAGE", "the gateway sent a text message; its protocol is binary");
      this.#stats.bytesIn += bytes.length;
      const m = decodeMux(bytes);
      switch (m.type) {
        case MuxType.DATA:
          // Data for a channel we already closed is the tail of an orderly close: dropped.
          this.#comms.get(m.channel)?.receive(m.payload);
          return;
        case MuxType.CLOSE: {
          const comm = this.#comms.get(m.channel);
          this.#comms.delete(m.channel);
          comm?.ended(m.payload.length > 0 ? new Error(muxText(m.payload)) : undefined);
          return;
        }
        case MuxType.OPENED:
        case MuxType.LISTENING: {
          const p = this.#pending.get(m.channel);
          this.#pending.delete(m.channel);
          // OPENED for a channel we gave up on (timed out): the gateway must drop that socket.
          if (!p && m.type === MuxType.OPENED && !this.#comms.has(m.channel)) this.#send(encodeMux(MuxType.CLOSE, m.channel, "not wanted"));
          p?.resolve(m.payload);
          return;
        }
        case MuxType.ERROR: {
          const p = this.#pending.get(m.channel);
          this.#pending.delete(m.channel);
          const text = muxText(m.payload);
          const sp = text.indexOf(" ");
          const code = sp > 0 && text.startsWith("DASK_ERR_") ? text.slice(0, sp) : "DASK_ERR_GATEWAY_REFUSED";
          p?.reject(new CommError(code, `gateway: ${sp > 0 ? text.slice(sp + 1) : text}`));
          return;
        }
        case MuxType.ACCEPT: {
          const onAccept = this.#onAccept;
          if (!onAccept) {
            this.#send(encodeMux(MuxType.CLOSE, m.channel, "not listening"));
            return;
          }
          onAccept(this.#comm(m.channel, "gateway", muxText(m.payload), this.#acceptOptions));
          return;
        }
        default:
          throw new CommError("DASK_ERR_GATEWAY_MESSAGE", `the gateway sent ${muxTypeName(m.type)}, which only a worker sends`);
      }
    } catch (e) {
      const err = e instanceof DaskError ? e : new CommError("DASK_ERR_GATEWAY_MESSAGE", String(e));
      this.#ws.close(1002, err.code);
      this.#shutdown(err);
    }
  }

  #shutdown(reason: DaskError): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
    const comms = [...this.#comms.values()];
    this.#comms.clear();
    for (const c of comms) c.ended(reason);
    this.#resolveClosed(reason);
  }
}
