// Message framing for dask comms: TCP (2022.12 and the 2026.7 "nosplit" variant) and WebSocket.
// Pure: bytes in, frames out; no sockets, no timers, no process. The comm layer (src/comm/) feeds
// socket chunks to a FrameReader and writes what packTcpMessage / encodeWsMessages return.
// This is also the facade for the Wasm prelude kernel (STYLE.md §1: protocol/ reaches AS kernels
// only through facades), so it is the one protocol module that imports from src/wasm/.
//
// Specs: protocol/DASK-PROTOCOL-2022.12.md §2 (TCP) and §11 (WebSocket); MODERN-DELTA.md §1.
// Reader: read N, parse the prelude, then read every frame the prelude lists, counted by N or not
// (a 2026 split always falls on a frame boundary, so both dialects occupy the same bytes).
// Writer: N = total, which 2022 and 2026 readers both accept.
//
// Memory: a frame that lies inside one pushed chunk is returned as a zero-copy subarray of it
// (so callers must not reuse a chunk after pushing it; Node sockets never do; and a small frame
// keeps its whole chunk alive, so whoever stores a frame long-term copies it). A frame that spans
// chunks is collected into one buffer of exactly its length, allocated once its prelude has been
// validated against the limits; every byte is copied at most once, so a 100 MB message arriving
// in 64 KiB chunks costs O(size), not O(size * chunks).
import * as S from "../../assembly/status.ts";
import { ConfigError, DaskError, errorFromStatus } from "../errors.ts";
import { envFlag } from "../runtime/wasm-source.ts";
import { WasmPreludeParser } from "../wasm/frame.ts";
import { parsePreludeJs, type FrameLimits, type PreludeParser } from "./frames-js.ts";

export type { FrameLimits, PreludeParser, PreludeResult } from "./frames-js.ts";
export { parsePreludeJs } from "./frames-js.ts";

/**
 * Defaults, chosen against what dask actually sends:
 * - maxFrameBytes 2^31-1: dask shards Serialized sub-frames at 64 MiB (TCP) / 8 MiB (WS)
 *   (DASK-PROTOCOL §2 "Sharding"), so only frame[0] or an unsharded pickle frame can be big; 2 GiB-1
 *   is also the largest length every JS engine's ArrayBuffer and Node's fs/socket APIs accept.
 * - maxMessageBytes 2^32 (4 GiB): a scatter/get_data of several sharded arrays may exceed 2 GiB in
 *   one message; above 4 GiB a peer is more likely hostile or broken than useful, and a worker that
 *   wants more raises it (Python has no limit but Tornado's buffer, half of RAM).
 * - maxFrames 65536: batched streams put one message's frames after another, a few per task; the
 *   largest captured batch has < 100. 65536 bounds the prelude a reader must buffer to 512 KiB.
 */
export const DEFAULT_FRAME_LIMITS: FrameLimits = Object.freeze({
  maxFrameBytes: 2 ** 31 - 1,
  maxMessageBytes: 2 ** 32,
  maxFrames: 65536,
});

/** Which prelude parser a reader uses: the AS kernel or its TS twin. */
export type FrameBackend = "js" | "wasm";

/**
 * Default backend: "js", unless DASK_WASM_BACKEND=wasm (read once, at the first reader).
 * bench/micro/frames.bench.ts, 2026-11-23, Node 24.21, 2 x AMD EPYC, shared (load 1-6), 5 runs:
 *   prelude parse alone: Wasm 87-245 ns/call vs TS twin 40-124 ns, Wasm/JS 0.33-0.71x (the copy
 *   into Wasm memory, the call and reading the lengths back cost more than reading three u64s);
 *   10,000 x 200 B messages in 64 KiB chunks: Wasm/JS 0.4-0.95x, never above 1;
 *   one 100 MB message: within noise of each other and of Buffer.copy (one prelude per 100 MB).
 * The Wasm kernel stays as the checked twin (differential test) and for hosts where it may win.
 */
let defaultBackend: FrameBackend | undefined;
let wasmParser: WasmPreludeParser | undefined;

function preludeParser(backend: FrameBackend | undefined): PreludeParser {
  const chosen = backend ?? (defaultBackend ??= envFlag("DASK_WASM_BACKEND") === "wasm" ? "wasm" : "js");
  if (chosen === "js") return parsePreludeJs;
  return (wasmParser ??= new WasmPreludeParser()).parse;
}

/** Completes and validates limits once, naming the option that is wrong (STYLE.md §5). */
export function resolveFrameLimits(limits: Partial<FrameLimits> = {}): FrameLimits {
  const out = { ...DEFAULT_FRAME_LIMITS, ...limits };
  // 2^53-1 keeps every length and sum an exact double on both sides of the Wasm boundary
  for (const [name, max] of [["maxFrameBytes", Number.MAX_SAFE_INTEGER], ["maxMessageBytes", Number.MAX_SAFE_INTEGER], ["maxFrames", 2 ** 31 - 1]] as const) {
    const v = out[name];
    if (!Number.isInteger(v) || v < 0 || v > max) throw new ConfigError(`options.${name} must be an integer in [0, ${max}], got ${String(v)}`);
  }
  return Object.freeze(out);
}

function protocolError(status: number, detail: string): DaskError {
  return errorFromStatus(status, detail);
}

/**
 * Incremental reader of TCP-framed messages, both dialects. Feed it chunks in arrival order with
 * `push`; `next` returns one message's frames or null while more bytes are needed. After a
 * protocol error the reader is dead: every later push/next throws the same error (the comm
 * closes the connection; there is no resynchronising inside a byte stream).
 */
export class FrameReader {
  readonly limits: FrameLimits;
  #parse: PreludeParser;
  /** Pushed chunks not yet fully consumed: #chunks[#head] from #off onward, then the rest. */
  #chunks: Uint8Array[] = [];
  #head = 0;
  #off = 0;
  /** Unconsumed bytes in #chunks. */
  #queued = 0;
  /** Bytes of the message in progress already taken from #chunks (prelude, frames, partial). */
  #taken = 0;
  /** Prefix length the prelude parser asked for last; no attempt before that many bytes. */
  #need = 8;
  /** Lengths of the message in progress, null while its prelude is incomplete. */
  #lengths: number[] | null = null;
  #frames: Uint8Array[] = [];
  /** Frame being collected across chunks, and how many of its bytes have arrived. */
  #partial: Uint8Array | null = null;
  #partialPos = 0;
  #error: DaskError | null = null;

  constructor(limits?: Partial<FrameLimits>, backend?: FrameBackend) {
    this.limits = resolveFrameLimits(limits);
    this.#parse = preludeParser(backend);
  }

  /** Bytes pushed and not yet returned in a complete message. */
  get bufferedBytes(): number {
    return this.#queued + this.#taken;
  }

  /** Appends bytes as they arrive (any split). The chunk is kept, not copied: do not reuse it. */
  push(chunk: Uint8Array): void {
    if (this.#error) throw this.#error;
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
  }

  /** One complete message's frames, or null if more bytes are needed. Throws a ProtocolError on bad input. */
  next(): Uint8Array[] | null {
    if (this.#error) throw this.#error;
    try {
      return this.#next();
    } catch (err) {
      if (err instanceof DaskError) this.#error = err;
      throw err;
    }
  }

  #next(): Uint8Array[] | null {
    if (this.#lengths === null && !this.#readPrelude()) return null;
    const lengths = this.#lengths!;
    while (this.#frames.length < lengths.length) {
      const len = lengths[this.#frames.length]!;
      if (this.#partial === null) {
        if (len === 0) {
          this.#frames.push(new Uint8Array(0)); // needs no bytes, even at the end of the queue
          continue;
        }
        const chunk = this.#chunks[this.#head];
        if (chunk !== undefined && chunk.length - this.#off >= len) {
          // whole frame inside the current chunk: zero copy. A plain Uint8Array view, not
          // chunk.subarray(): on a Node Buffer that goes through the species constructor
          // (FastBuffer), which profiling showed costing more than the prelude parse.
          this.#frames.push(new Uint8Array(chunk.buffer, chunk.byteOffset + this.#off, len));
          this.#consume(len);
          continue;
        }
        if (this.#queued === 0) return null;
        this.#partial = new Uint8Array(len);
        this.#partialPos = 0;
      }
      if (!this.#fillPartial()) return null;
      this.#frames.push(this.#partial);
      this.#partial = null;
    }
    const frames = this.#frames;
    this.#frames = [];
    this.#lengths = null;
    this.#taken = 0;
    this.#need = 8;
    return frames;
  }

  /** Tries to parse the next prelude; true once lengths are known and the prelude is consumed. */
  #readPrelude(): boolean {
    while (this.#queued >= this.#need) {
      const r = this.#peek(this.#need) ? this.#parse(this.#chunks[this.#head]!, this.limits, this.#off) : this.#parse(this.#gather(this.#need), this.limits);
      if (r.status === S.STATUS_NEED_MORE) {
        // the parser always asks for more than it was given, so this loop terminates
        this.#need = r.bytes;
        continue;
      }
      if (r.status !== S.STATUS_OK) {
        throw protocolError(r.status, r.counted >= 0 ? `frame ${r.counted} of a TCP message` : "TCP message prelude");
      }
      this.#lengths = r.lengths;
      this.#consume(16 + 8 * r.lengths.length);
      return true;
    }
    return false;
  }

  /** True when the current chunk alone holds at least `min` unconsumed bytes (parse in place). */
  #peek(min: number): boolean {
    return this.#chunks[this.#head]!.length - this.#off >= min;
  }

  /**
   * Exactly `min` unconsumed bytes copied out of several chunks, for a prelude that spans them.
   * Only called with min <= #queued, and at most three times per message (8, 16, full prelude),
   * so a prelude arriving byte by byte is still copied O(1) times.
   */
  #gather(min: number): Uint8Array {
    const out = new Uint8Array(min);
    let pos = 0;
    for (let i = this.#head, off = this.#off; pos < min; i++, off = 0) {
      const c = this.#chunks[i]!;
      const n = Math.min(c.length - off, min - pos);
      out.set(c.subarray(off, off + n), pos);
      pos += n;
    }
    return out;
  }

  /** Copies queued bytes into #partial; true when it is full. Each byte is copied once. */
  #fillPartial(): boolean {
    const dst = this.#partial!;
    while (this.#partialPos < dst.length && this.#queued > 0) {
      const c = this.#chunks[this.#head]!;
      const n = Math.min(c.length - this.#off, dst.length - this.#partialPos);
      dst.set(n === c.length ? c : c.subarray(this.#off, this.#off + n), this.#partialPos);
      this.#partialPos += n;
      this.#consume(n);
    }
    return this.#partialPos === dst.length;
  }

  /** Drops n bytes from the front of the queue (n <= #queued), releasing spent chunks. */
  #consume(n: number): void {
    this.#queued -= n;
    this.#taken += n;
    while (n > 0) {
      const c = this.#chunks[this.#head]!;
      const left = c.length - this.#off;
      if (n < left) {
        this.#off += n;
        return;
      }
      n -= left;
      this.#chunks[this.#head++] = undefined as unknown as Uint8Array; // let the chunk go
      this.#off = 0;
    }
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      // amortised O(1): compact only when the dead prefix dominates
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}

function writeU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, value >>> 0, true);
  dv.setUint32(offset + 4, Math.floor(value / 4294967296), true);
}

function byteCount(frames: readonly Uint8Array[]): number {
  let sum = 0;
  for (const f of frames) sum += f.length;
  return sum;
}

/** The TCP prelude for `frames`: u64 N (= 8 + 8n + Σlen, so both dialects read it) | u64 n | u64 len[]. */
export function encodeTcpPrelude(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(16 + 8 * frames.length);
  writePrelude(out, frames, byteCount(frames));
  return out;
}

function writePrelude(out: Uint8Array, frames: readonly Uint8Array[], payload: number): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  writeU64(dv, 0, 8 + 8 * frames.length + payload);
  writeU64(dv, 8, frames.length);
  for (let i = 0; i < frames.length; i++) writeU64(dv, 16 + 8 * i, frames[i]!.length);
}

/**
 * Prelude and frames in one buffer, the bytes a 2022 or 2026 peer expects. Copies every frame:
 * for large frames a comm should write encodeTcpPrelude(frames) and then the frames themselves
 * (what dask's TCP.write does above 128 KiB).
 */
export function packTcpMessage(frames: readonly Uint8Array[]): Uint8Array {
  const payload = byteCount(frames);
  const header = 16 + 8 * frames.length;
  const out = new Uint8Array(header + payload);
  writePrelude(out, frames, payload);
  let pos = header;
  for (const f of frames) {
    out.set(f, pos);
    pos += f.length;
  }
  return out;
}

/**
 * WebSocket framing (DASK-PROTOCOL §11): one binary WS message holding the u64 LE frame count,
 * then one binary WS message per frame. Returns those messages; frames are not copied.
 */
export function encodeWsMessages(frames: readonly Uint8Array[]): Uint8Array[] {
  const count = new Uint8Array(8);
  writeU64(new DataView(count.buffer), 0, frames.length);
  return [count, ...frames];
}

/**
 * Collects WebSocket messages into dask messages. `push` takes each binary WS message in order
 * and returns the frames once the last one of a dask message has arrived, else null. Frames are
 * the pushed WS messages themselves (no copy). Dead after a protocol error, like FrameReader.
 */
export class WsFrameReader {
  readonly limits: FrameLimits;
  /** Frames still expected for the message in progress; -1 = waiting for a count message. */
  #remaining = -1;
  #frames: Uint8Array[] = [];
  /** Size the message would have TCP-framed (8 + 8n + Σlen), checked against maxMessageBytes. */
  #size = 0;
  #error: DaskError | null = null;

  constructor(limits?: Partial<FrameLimits>) {
    this.limits = resolveFrameLimits(limits);
  }

  push(wsMessage: Uint8Array): Uint8Array[] | null {
    if (this.#error) throw this.#error;
    try {
      return this.#push(wsMessage);
    } catch (err) {
      if (err instanceof DaskError) this.#error = err;
      throw err;
    }
  }

  #push(m: Uint8Array): Uint8Array[] | null {
    if (this.#remaining < 0) {
      // ws.py: struct.unpack("Q", first_message); anything but 8 bytes is a framing error there too
      if (m.length !== 8) throw protocolError(S.ERR_FRAME_WS_COUNT, `got ${m.length} bytes`);
      const dv = new DataView(m.buffer, m.byteOffset, 8);
      const n = dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true);
      if (n > this.limits.maxFrames) throw protocolError(S.ERR_TOO_MANY_FRAMES, `WebSocket message announces ${n} frames`);
      this.#size = 8 + 8 * n;
      if (this.#size > this.limits.maxMessageBytes) throw protocolError(S.ERR_MESSAGE_TOO_LARGE, `WebSocket message of ${n} frames`);
      this.#remaining = n;
    } else {
      if (m.length > this.limits.maxFrameBytes) throw protocolError(S.ERR_FRAME_TOO_LARGE, `WebSocket frame ${this.#frames.length} of ${m.length} bytes`);
      this.#size += m.length;
      if (this.#size > this.limits.maxMessageBytes) throw protocolError(S.ERR_MESSAGE_TOO_LARGE, `WebSocket frame ${this.#frames.length}`);
      this.#frames.push(m);
      this.#remaining--;
    }
    if (this.#remaining !== 0) return null;
    const frames = this.#frames;
    this.#frames = [];
    this.#remaining = -1;
    return frames;
  }
}
