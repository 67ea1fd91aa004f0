// `dask-wasm gateway`: the Node process that lets workers which cannot listen (browser tabs,
// edge functions) join a dask cluster. DESIGN.md "Browsers and edges: the gateway".
// - serves the volunteer page, its bundles and the core/lz4 `.wasm` (application/wasm) on one
//   origin, so the page's WebSocket is same-origin (TLS terminates here with --tls-cert/--tls-key);
// - accepts one WebSocket per worker on /worker and carries its channels (mux.ts): TCP
//   connections it opens for the worker (to the scheduler, to peers) and the ones peers open to
//   the address it listens on for that worker;
// - when that WebSocket closes (tab closed, edge gone) it closes every connection of that worker
//   and frees its address, so the scheduler sees the worker leave and reschedules.
// It relays bytes and never runs tasks, never parses dask messages in DATA.
//
// Security: /worker accepts same-origin browsers only (an Origin whose host differs from Host is
// refused with 403, as dask's own ws endpoint does) and requests without Origin (edges, Node).
// A worker may open connections only to the scheduler, to addresses the scheduler lists as its
// workers (asked with `identity` when an address is new) and to this gateway's own worker
// addresses: the gateway is not an open TCP proxy.
//
// IO: HTTP(S) server, WebSockets, TCP sockets, one scheduler comm for `identity`.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { ConfigError } from "../errors.ts";
import { connect } from "../comm/registry.ts";
import { sendRecv } from "../comm/rpc.ts";
import { formatAddress, parseAddress } from "../comm/address.ts";
import { decodeMux, encodeMux, MuxType, muxText, muxTypeName } from "./mux.ts";

export interface GatewayAsset {
  body: Uint8Array | string;
  type: string;
}

export interface GatewayOptions {
  /** The dask scheduler's tcp:// address. */
  scheduler: string;
  /** Host the HTTP(S) + WebSocket server binds (default 127.0.0.1). */
  host?: string;
  /** Its port (0 = any free port). */
  port?: number;
  /** Host the per-worker listeners bind; peers and the scheduler must reach it (default: host). */
  workerHost?: string;
  /** PEM certificate and key: serve https/wss. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Path -> asset (the volunteer page, bundles, wasm), served with GET. */
  assets?: ReadonlyMap<string, GatewayAsset>;
  /** Bytes a worker's WebSocket may have queued before its TCP sockets are paused (default 8 MiB). */
  highWaterBytes?: number;
  /** Largest gateway WS message accepted from a worker (default 64 MiB; DATA chunks are far smaller). */
  maxMessageBytes?: number;
  log?: (level: "info" | "warning" | "error", message: string) => void;
}

/** One connected worker, as /status reports it. */
export interface GatewayWorkerInfo {
  id: number;
  /** The address the gateway listens on for it ("" until it asked). */
  address: string;
  remote: string;
  channels: number;
  connectedAt: number;
}

interface WorkerLink {
  id: number;
  ws: WebSocket;
  remote: string;
  sockets: Map<number, net.Socket>;
  listener: net.Server | undefined;
  address: string;
  nextChannel: number; // ours are even
  connectedAt: number;
  paused: boolean;
  /** TCP peers whose buffers are over SOCKET_BUFFER_BYTES: reading this worker waits for them. */
  slowSockets: Set<net.Socket>;
}

const DEFAULT_HIGH_WATER = 8 * 1024 * 1024;
/** What one TCP peer may have waiting in its socket before the gateway stops reading its worker. */
export const SOCKET_BUFFER_BYTES = 32 * 1024 * 1024;
/** Shortest time between two `identity` lookups (a new worker is usually known within one heartbeat). */
const IDENTITY_INTERVAL_MS = 250;

export class Gateway {
  readonly options: Readonly<GatewayOptions>;
  #http: HttpServer | undefined;
  #wss: WebSocketServer;
  #links = new Map<number, WorkerLink>();
  #nextId = 1;
  #knownWorkers = new Set<string>();
  /** The scheduler `identity` lookup in flight or done less than IDENTITY_INTERVAL_MS ago. */
  #lookup: { promise: Promise<void>; startedAt: number } | undefined;
  #url = "";
  #log: NonNullable<GatewayOptions["log"]>;
  #schedulerAddress: string;

  constructor(options: GatewayOptions) {
    const parsed = parseAddress(options.scheduler);
    if (parsed.scheme !== "tcp") throw new ConfigError(`--scheduler must be a tcp:// address, got ${options.scheduler}`);
    this.#schedulerAddress = formatAddress(parsed);
    this.options = { ...options };
    this.#log = options.log ?? ((level, message) => {
      if (level !== "info") console.error(`[dask-wasm gateway] ${level}: ${message}`);
    });
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes ?? 64 * 1024 * 1024, perMessageDeflate: false });
  }

  /** http(s)://host:port of the page. */
  get url(): string {
    return this.#url;
  }

  /** Connected workers (tests and /status). */
  workers(): GatewayWorkerInfo[] {
    return [...this.#links.values()].map((l) => ({ id: l.id, address: l.address, remote: l.remote, channels: l.sockets.size, connectedAt: l.connectedAt }));
  }

  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.#serve(req, res);
    const server = this.options.tls ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key }, handler) : createHttpServer(handler);
    server.on("upgrade", (req, socket, head) => this.#upgrade(req, socket, head));
    this.#http = server;
    const host = this.options.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port: this.options.port ?? 0 }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const bound = server.address() as net.AddressInfo;
    this.#url = `${this.options.tls ? "https" : "http"}://${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
    return this.#url;
  }

  async close(): Promise<void> {
    for (const link of [...this.#links.values()]) this.#drop(link, "gateway closing");
    this.#wss.close();
    const http = this.#http;
    if (http) {
      http.closeAllConnections?.();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }

  // --- HTTP --------------------------------------------------------------------------------

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/status") {
      const body = JSON.stringify({ scheduler: this.#schedulerAddress, workers: this.workers() });
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(body);
      return;
    }
    const asset = this.options.assets?.get(path === "/" ? "/index.html" : path);
    if (!asset) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}\n`);
      return;
    }
    res.writeHead(200, {
      "content-type": asset.type,
      "cache-control": "no-store",
      // The page evaluates nothing from the network: scripts from this origin only, no eval.
      "content-security-policy": "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; style-src 'self' 'unsafe-inline'",
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : asset.body);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path !== "/worker") {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let originHost = "";
      try {
        originHost = new URL(origin).host;
      } catch {
        // "null" and other opaque origins: refused below
      }
      if (originHost !== req.headers.host) {
        this.#log("warning", `refused a cross-origin worker connection (Origin ${origin}, Host ${req.headers.host})`);
        socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        return;
      }
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req.socket.remoteAddress ?? "?"));
  }

  // --- worker links -------------------------------------------------------------------------

  #accept(ws: WebSocket, remote: string): void {
    const link: WorkerLink = { id: this.#nextId++, ws, remote, sockets: new Map(), listener: undefined, address: "", nextChannel: 2, connectedAt: Date.now() / 1000, paused: false, slowSockets: new Set() };
    this.#links.set(link.id, link);
    this.#log("info", `worker link ${link.id} from ${remote}`);
    ws.on("message", (data: RawData, isBinary: boolean) => {
      try {
        if (!isBinary) throw new Error("text message (the gateway protocol is binary)");
        this.#onMessage(link, toBytes(data));
      } catch (e) {
        // A worker that speaks nonsense loses its own link only.
        this.#log("warning", `worker link ${link.id}: ${(e as Error).message}; closing it`);
        ws.close(1002, "DASK_ERR_GATEWAY_MESSAGE");
        this.#drop(link, "bad message");
      }
    });
    ws.on("close", () => this.#drop(link, "worker closed its WebSocket"));
    ws.on("error", (e) => this.#drop(link, `WebSocket error: ${e.message}`));
  }

  /** Everything of one worker goes: its sockets, its listener (the address is free again). */
  #drop(link: WorkerLink, why: string): void {
    if (!this.#links.delete(link.id)) return;
    this.#log("info", `worker link ${link.id} (${link.address || "no address"}) closed: ${why}`);
    for (const s of link.sockets.values()) s.destroy();
    link.sockets.clear();
    link.listener?.close();
    link.listener = undefined;
    if (link.address) this.#knownWorkers.delete(link.address);
    if (link.ws.readyState === link.ws.OPEN || link.ws.readyState === link.ws.CONNECTING) link.ws.terminate();
  }

  #send(link: WorkerLink, message: Uint8Array): void {
    if (link.ws.readyState !== link.ws.OPEN) return;
    link.ws.send(message, () => this.#maybeResume(link));
    // Backpressure: a slow worker pauses its sockets instead of growing our memory.
    if (!link.paused && link.ws.bufferedAmount > (this.options.highWaterBytes ?? DEFAULT_HIGH_WATER)) {
      link.paused = true;
      for (const s of link.sockets.values()) s.pause();
    }
  }

  #maybeResume(link: WorkerLink): void {
    if (link.paused && link.ws.bufferedAmount <= (this.options.highWaterBytes ?? DEFAULT_HIGH_WATER) / 2) {
      link.paused = false;
      for (const s of link.sockets.values()) s.resume();
    }
  }

  #onMessage(link: WorkerLink, bytes: Uint8Array): void {
    const m = decodeMux(bytes);
    switch (m.type) {
      case MuxType.DATA: {
        const s = link.sockets.get(m.channel);
        if (!s) return; // the tail of a channel that closed
        s.write(m.payload);
        // A slow TCP peer first gets a buffer of its own (so one slow reader does not stall the
        // worker's other channels, its scheduler stream included); only past SOCKET_BUFFER_BYTES
        // does the gateway stop reading this worker until that socket drains. A peer that dies
        // while full never drains: close resumes too, or the link would stall for good.
        if (s.writableLength > SOCKET_BUFFER_BYTES && !link.slowSockets.has(s)) {
          link.slowSockets.add(s);
          link.ws.pause();
          const resume = (): void => {
            s.off("drain", resume);
            s.off("close", resume);
            link.slowSockets.delete(s);
            if (link.slowSockets.size === 0) link.ws.resume();
          };
          s.on("drain", resume);
          s.on("close", resume);
        }
        return;
      }
      case MuxType.CLOSE: {
        const s = link.sockets.get(m.channel);
        link.sockets.delete(m.channel);
        s?.end(() => s.destroy());
        return;
      }
      case MuxType.OPEN:
        if (m.channel % 2 !== 1 || link.sockets.has(m.channel)) throw new Error(`OPEN on channel ${m.channel}, which is not a free odd channel`);
        void this.#open(link, m.channel, muxText(m.payload));
        return;
      case MuxType.LISTEN:
        void this.#listen(link, m.channel);
        return;
      default:
        throw new Error(`${muxTypeName(m.type)} is not a message a worker sends`);
    }
  }

  async #open(link: WorkerLink, channel: number, address: string): Promise<void> {
    let target: { host: string; port: number };
    try {
      const parsed = parseAddress(address);
      if (parsed.scheme !== "tcp") throw new Error(`only tcp:// addresses can be opened, not ${address}`);
      if (!(await this.#allowed(formatAddress(parsed)))) {
        this.#send(link, encodeMux(MuxType.ERROR, channel, `DASK_ERR_GATEWAY_REFUSED ${address} is neither the scheduler nor one of its workers`));
        return;
      }
      target = { host: parsed.host, port: parsed.port };
    } catch (e) {
      this.#send(link, encodeMux(MuxType.ERROR, channel, `DASK_ERR_ADDRESS ${(e as Error).message}`));
      return;
    }
    if (!this.#links.has(link.id)) return;
    const socket = net.connect(target);
    socket.setNoDelay(true);
    const onError = (err: Error): void => {
      this.#send(link, encodeMux(MuxType.ERROR, channel, `DASK_ERR_COMM_CONNECT could not connect to ${address}: ${err.message}`));
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      if (!this.#links.has(link.id)) return void socket.destroy();
      this.#relay(link, channel, socket);
      this.#send(link, encodeMux(MuxType.OPENED, channel));
    });
  }

  async #listen(link: WorkerLink, channel: number): Promise<void> {
    if (link.listener) {
      this.#send(link, encodeMux(MuxType.ERROR, channel, "DASK_ERR_COMM_LISTEN this worker already has an address"));
      return;
    }
    const server = net.createServer({ noDelay: true }, (socket) => {
      if (!this.#links.has(link.id)) return void socket.destroy();
      const ch = link.nextChannel;
      link.nextChannel += 2;
      const peer = formatAddress({ scheme: "tcp", host: (socket.remoteAddress ?? "").replace(/^::ffff:/, ""), port: socket.remotePort ?? 0 });
      this.#relay(link, ch, socket);
      this.#send(link, encodeMux(MuxType.ACCEPT, ch, peer));
    });
    link.listener = server;
    const host = this.options.workerHost ?? this.options.host ?? "127.0.0.1";
    server.once("error", (err) => this.#send(link, encodeMux(MuxType.ERROR, channel, `DASK_ERR_COMM_LISTEN ${err.message}`)));
    server.listen({ host, port: 0 }, () => {
      // The worker may have left while the bind was in flight: then nobody owns this address,
      // and it must not join the allowed set (it would stay there, #drop already ran).
      if (!this.#links.has(link.id)) return void server.close();
      const bound = server.address() as net.AddressInfo;
      link.address = formatAddress({ scheme: "tcp", host: bound.address, port: bound.port });
      // Peers of this worker may now connect to it through us, and it to them.
      this.#knownWorkers.add(link.address);
      this.#log("info", `worker link ${link.id} listens at ${link.address}`);
      this.#send(link, encodeMux(MuxType.LISTENING, channel, link.address));
    });
  }

  /** TCP bytes <-> DATA messages on `channel`; the channel ends when the socket does. */
  #relay(link: WorkerLink, channel: number, socket: net.Socket): void {
    link.sockets.set(channel, socket);
    if (link.paused) socket.pause();
    socket.on("data", (chunk: Buffer) => this.#send(link, encodeMux(MuxType.DATA, channel, chunk)));
    const closed = (why: string): void => {
      if (link.sockets.get(channel) !== socket) return;
      link.sockets.delete(channel);
      this.#send(link, encodeMux(MuxType.CLOSE, channel, why));
    };
    socket.on("end", () => closed(""));
    socket.on("error", (e) => closed(e.message));
    socket.on("close", () => closed(""));
  }

  /** The scheduler, a worker it lists, or one of ours. */
  async #allowed(address: string): Promise<boolean> {
    if (address === this.#schedulerAddress || this.#knownWorkers.has(address)) return true;
    // A new peer address: ask the scheduler who its workers are now. Concurrent OPENs share one
    // lookup, and lookups are at most one per IDENTITY_INTERVAL_MS, so a client that OPENs
    // random addresses cannot turn the gateway into a flood of scheduler connections. Only a
    // lookup that started after this request can refuse it (the worker may have just joined).
    const asked = Date.now();
    for (;;) {
      if (!this.#lookup) {
        const startedAt = Date.now();
        const promise = this.#refreshWorkers().finally(() => {
          const t = setTimeout(() => (this.#lookup = undefined), IDENTITY_INTERVAL_MS);
          t.unref?.();
        });
        this.#lookup = { promise, startedAt };
      }
      const { promise, startedAt } = this.#lookup;
      await promise;
      if (this.#knownWorkers.has(address)) return true;
      if (startedAt >= asked) return false;
      await new Promise((r) => setTimeout(r, IDENTITY_INTERVAL_MS));
    }
  }

  async #refreshWorkers(): Promise<void> {
    try {
      const comm = await connect(this.#schedulerAddress, { timeoutMs: 10_000 });
      try {
        const id = (await sendRecv(comm, { op: "identity", reply: true })) as Record<string, unknown>;
        const workers = id["workers"];
        const keys = workers instanceof Map ? [...workers.keys()] : workers && typeof workers === "object" ? Object.keys(workers) : [];
        for (const w of keys) if (typeof w === "string") this.#knownWorkers.add(w);
      } finally {
        await comm.close();
      }
    } catch (e) {
      this.#log("warning", `could not ask the scheduler for its workers: ${(e as Error).message}`);
    }
  }

}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
