// The gateway's channel protocol: how one WebSocket between a worker that cannot listen (a
// browser tab, an edge function) and `dask-wasm gateway` carries many TCP connections at once.
// DESIGN.md "Browsers and edges: the gateway".
//
// Every WS message is binary: [u8 type][u32 LE channel][payload]. Channels the worker opens are
// odd, channels the gateway opens (an inbound peer accepted on the worker's address) are even,
// so neither side ever picks an id the other already uses.
//   OPEN      worker -> gateway   payload: UTF-8 address "tcp://host:port" to connect to
//   OPENED    gateway -> worker   payload: empty; the TCP connection is up
//   DATA      both ways           payload: bytes of the TCP stream, untouched (dask's own framing)
//   CLOSE     both ways           payload: UTF-8 reason ("" = orderly end)
//   LISTEN    worker -> gateway   payload: empty; "listen for me" (one listener per worker)
//   LISTENING gateway -> worker   payload: UTF-8 address the gateway registered for this worker
//   ACCEPT    gateway -> worker   payload: UTF-8 peer address; a new inbound connection
//   ERROR     gateway -> worker   payload: UTF-8 "DASK_ERR_… message"; OPEN/LISTEN refused
// The gateway relays DATA as bytes and never parses dask messages in them; framing, handshake
// and everything dask happen at the worker, over the same frame layer as a direct TCP comm.
//
// Pure: encoding and decoding only, no IO. Must not: accept a message shorter than its header
// or of an unknown type without a coded ProtocolError.
import { ProtocolError } from "../errors.ts";

export const MuxType = Object.freeze({ OPEN: 1, OPENED: 2, DATA: 3, CLOSE: 4, LISTEN: 5, LISTENING: 6, ACCEPT: 7, ERROR: 8 });
export type MuxTypeCode = (typeof MuxType)[keyof typeof MuxType];

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(MuxType).map(([k, v]) => [v, k]));

export const MUX_HEADER_BYTES = 5;

export interface MuxMessage {
  type: MuxTypeCode;
  channel: number;
  payload: Uint8Array;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: false });

/** One WS message: header + payload (one copy of the payload, so the message is one buffer). */
export function encodeMux(type: MuxTypeCode, channel: number, payload: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const body = typeof payload === "string" ? utf8.encode(payload) : payload;
  const out = new Uint8Array(MUX_HEADER_BYTES + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, channel >>> 0, true);
  out.set(body, MUX_HEADER_BYTES);
  return out;
}

/** Parses one WS message; the payload is a view, not a copy. */
export function decodeMux(message: Uint8Array): MuxMessage {
  if (message.length < MUX_HEADER_BYTES) {
    throw new ProtocolError("DASK_ERR_GATEWAY_MESSAGE", `gateway message of ${message.length} bytes is shorter than its ${MUX_HEADER_BYTES}-byte header`);
  }
  const type = message[0]!;
  if (!(type in NAMES)) throw new ProtocolError("DASK_ERR_GATEWAY_MESSAGE", `unknown gateway message type ${type}`);
  const channel = new DataView(message.buffer, message.byteOffset, message.length).getUint32(1, true);
  return { type: type as MuxTypeCode, channel, payload: message.subarray(MUX_HEADER_BYTES) };
}

export function muxText(payload: Uint8Array): string {
  return fromUtf8.decode(payload);
}

export function muxTypeName(type: number): string {
  return NAMES[type] ?? `type ${type}`;
}
