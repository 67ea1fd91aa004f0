// TS twin of the Wasm prelude kernel (assembly/frame.ts `framePreludeParse`), and the types both
// backends share. Pure: no IO, no Wasm, no state between calls. Semantics (what is checked, in
// which order, which status comes back) must stay identical to the AS kernel; the differential
// test in test/protocol/frames.test.ts runs both on the same inputs.
//
// Why a twin at all: the prelude of a typical dask message is 24-40 bytes, and copying it into
// Wasm memory costs about as much as parsing it (STYLE.md §3 "a Wasm path must earn its place");
// bench/micro/frames.bench.ts measures both and src/protocol/frames.ts picks the default.
import * as S from "../../assembly/status.ts";

/** Bounds a reader enforces before allocating anything a peer announces. */
export interface FrameLimits {
  /** Longest single frame, in bytes. */
  maxFrameBytes: number;
  /**
   * Longest message: bytes after the leading u64 of the TCP framing, 8 + 8*nframes + Σlen
   * (for WebSocket, the same number computed as if the message were TCP-framed).
   */
  maxMessageBytes: number;
  /** Most frames in one message. */
  maxFrames: number;
}

/** Outcome of parsing a message prefix: status, and on success the frame lengths. */
export interface PreludeResult {
  /** STATUS_OK, STATUS_NEED_MORE or a negative ERR_* code from assembly/status.ts. */
  status: number;
  /** NEED_MORE: bytes of prefix needed for the next attempt. OK: whole message size in bytes. */
  bytes: number;
  /** OK: frames counted by N (< lengths.length for a 2026 split message). Error: offending frame or -1. */
  counted: number;
  /** OK: every frame's length; empty otherwise. */
  lengths: number[];
}

/**
 * A prelude parser: the Wasm facade and `parsePreludeJs` both have this shape. The prefix is
 * `bytes` from `start` to its end (an offset rather than a subarray: the reader calls this once
 * per message on a socket chunk, and a subarray per call costs as much as the parse).
 */
export type PreludeParser = (bytes: Uint8Array, limits: FrameLimits, start?: number) => PreludeResult;

const TWO_32 = 4294967296;

/**
 * u64 LE as a number. Exact below 2^53; above, rounding is monotone, so a value >= 2^53 still
 * compares greater than every limit (limits are <= 2^53-1, checked in frames.ts).
 */
function u64(b: Uint8Array, o: number): number {
  const lo = (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
  const hi = (b[o + 4]! | (b[o + 5]! << 8) | (b[o + 6]! << 16) | (b[o + 7]! << 24)) >>> 0;
  return hi * TWO_32 + lo;
}

function result(status: number, bytes: number, counted = -1, lengths: number[] = []): PreludeResult {
  return { status, bytes, counted, lengths };
}

/**
 * Parses the prelude of one TCP-framed message from any prefix of it (see assembly/frame.ts for
 * the layout). Returns NEED_MORE with the prefix length to come back with, an error status as
 * early as the bytes allow (N at 8 bytes, nframes at 16), or OK with all lengths.
 */
export function parsePreludeJs(b: Uint8Array, limits: FrameLimits, start = 0): PreludeResult {
  const len = b.length - start;
  if (len < 8) return result(S.STATUS_NEED_MORE, 8);
  const total = u64(b, start);
  if (total > limits.maxMessageBytes) return result(S.ERR_MESSAGE_TOO_LARGE, 0);
  if (len < 16) return result(S.STATUS_NEED_MORE, 16);
  const n = u64(b, start + 8);
  if (n > limits.maxFrames) return result(S.ERR_TOO_MANY_FRAMES, 0);
  const prelude = 8 + 8 * n;
  if (total < prelude) return result(S.ERR_FRAME_BAD_PRELUDE, 0);
  const headerLen = 8 + prelude;
  if (len < headerLen) return result(S.STATUS_NEED_MORE, headerLen);
  const nosplit = total - prelude;
  const lengths = new Array<number>(n);
  let counted = nosplit === 0 ? 0 : -1;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const l = u64(b, start + 16 + 8 * i);
    if (l > limits.maxFrameBytes) return result(S.ERR_FRAME_TOO_LARGE, 0, i);
    // sum stays <= maxMessageBytes <= 2^53-1 before each addition, so it is exact
    sum += l;
    if (prelude + sum > limits.maxMessageBytes) return result(S.ERR_MESSAGE_TOO_LARGE, 0, i);
    lengths[i] = l;
    if (counted < 0 && sum === nosplit) counted = i + 1;
  }
  // N claims more frame bytes than the prelude announces
  if (nosplit > sum) return result(S.ERR_FRAME_BAD_PRELUDE, 0);
  // N ends inside a frame; 2026 writers split only on frame boundaries
  if (counted < 0) return result(S.ERR_FRAME_BAD_PRELUDE, 0);
  return result(S.STATUS_OK, headerLen + sum, counted, lengths);
}
