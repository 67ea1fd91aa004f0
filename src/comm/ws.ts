// WebSocket comms: dask's own `ws://` transport (distributed/comm/ws.py) over the platform's
// WebSocket — the browser's, workerd's, or Node's global one (undici's). One dask message is one
// binary WS message holding the u64 LE frame count, then one binary WS message per frame
// (DASK-PROTOCOL §11); the frames go through the same FramedComm and codec as TCP, only the
// Framing differs (WsFrameReader / encodeWsMessages from src/protocol/frames.ts).
// `openWebSocket` is also what the gateway link (src/gateway/link.ts) opens its socket with.
//
// IO: the WebSocket only. Must not: send text messages (ws.py refuses them), or throw from an
// event handler (bad bytes close this comm with a coded error, nothing else).
import { encodeWsMessages, WsFrameReader } from "../protocol/frames.ts";
import type { Comm, CommOptions, FrameLimits, FrameSource, Framing } from "./comm.ts";
import { CommError } from "./comm.ts";
import { FramedComm } from "./framed.ts";
import { DEFAULT_CODEC } from "./wire.ts";

/** The part of the WHATWG WebSocket every runtime we target has. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: { data?: unknown; code?: number; reason?: string; message?: string }) => void): void;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

const OPEN = 1;

/** The platform's WebSocket (Node >= 22 has undici's as a global). */
export function platformWebSocket(url: string): WebSocketLike {
  const Ctor = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!Ctor) throw new CommError("DASK_ERR_COMM_CONNECT", "this runtime has no global WebSocket");
  return new Ctor(url);
}

/** A received message's bytes (binary only; text is refused by the caller). */
export function messageBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/** Opens `url` and resolves once it is open (rejects with a coded error if it never opens). */
export function openWebSocket(url: string, factory: WebSocketFactory = platformWebSocket): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    let ws: WebSocketLike;
    try {
      ws = factory(url);
    } catch (e) {
      reject(new CommError("DASK_ERR_COMM_CONNECT", `could not open ${url}: ${(e as Error).message}`, { cause: e }));
      return;
    }
    ws.binaryType = "arraybuffer";
    let settled = false;
    ws.addEventListener("open", () => {
      settled = true;
      resolve(ws);
    });
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      reject(new CommError("DASK_ERR_COMM_CONNECT", `could not open ${url}: ${why}`));
    };
    ws.addEventListener("error", (e) => fail(e.message ?? "error event"));
    ws.addEventListener("close", (e) => fail(`closed with code ${e.code ?? "?"}${e.reason ? ` (${e.reason})` : ""}`));
  });
}

/** dask's WS framing: every pushed chunk is one whole WS message. */
export function wsFraming(limits?: FrameLimits): Framing {
  return {
    createReader(): FrameSource {
      const reader = new WsFrameReader(limits);
      const ready: Uint8Array[][] = [];
      return {
        push(message) {
          const frames = reader.push(message);
          if (frames) ready.push(frames);
        },
        next: () => ready.shift() ?? null,
      };
    },
    pack: (frames) => encodeWsMessages(frames),
  };
}

/** A FramedComm over an open WebSocket with dask's WS framing. */
export function commFromWebSocket(ws: WebSocketLike, url: string, opts: CommOptions = {}): Comm {
  const comm = new FramedComm({
    transport: {
      async write(chunks) {
        if (ws.readyState !== OPEN) throw new CommError("DASK_ERR_COMM_CLOSED", `comm closed: ${url} is not open`);
        for (const c of chunks) ws.send(c);
      },
      end: () => ws.close(1000),
      destroy: () => ws.close(1000),
    },
    framing: (opts.framing ?? wsFraming)(opts.limits),
    codec: opts.codec ?? DEFAULT_CODEC,
    localAddress: "ws://",
    peerAddress: url,
  });
  ws.addEventListener("message", (e) => {
    const bytes = messageBytes(e.data);
    // ws.py accepts binary messages only; a text message is a protocol error for this comm.
    comm.receive(bytes ?? new Uint8Array(0));
  });
  ws.addEventListener("close", () => comm.ended());
  ws.addEventListener("error", (e) => comm.ended(new Error(e.message ?? "WebSocket error")));
  return comm;
}

/** Connects to a dask `--protocol ws` endpoint ("ws://host:port", path "/"). */
export async function wsConnect(scheme: string, host: string, port: number, opts: CommOptions = {}, factory?: WebSocketFactory): Promise<Comm> {
  const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}/`;
  const ws = await openWebSocket(url, factory);
  return commFromWebSocket(ws, `${scheme}://${host}:${port}`, opts);
}
