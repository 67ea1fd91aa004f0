// TCP frame prelude kernel: parses and validates the header of one dask message, both dialects
// (protocol/DASK-PROTOCOL-2022.12.md §2, MODERN-DELTA.md §1). Called once per message on its
// first bytes; never sees frame payloads, never allocates, never keeps state between calls.
// The TS twin is src/protocol/frames-js.ts (`parsePreludeJs`); both must agree byte for byte.
//
// Wire layout (all u64 little-endian):
//   N | nframes | len[0] .. len[nframes-1] | frames...
// 2022: N == 8 + 8*nframes + Σlen (bytes that follow N).
// 2026: N may count the prelude plus only the FIRST k frames ("nosplit" part); the other frames
//       follow uncounted. The split is always on a frame boundary, so N - prelude must equal a
//       prefix sum of the lengths. Either way the message occupies 16 + 8*nframes + Σlen bytes.
import {
  STATUS_OK,
  STATUS_NEED_MORE,
  ERR_FRAME_TOO_LARGE,
  ERR_MESSAGE_TOO_LARGE,
  ERR_TOO_MANY_FRAMES,
  ERR_FRAME_BAD_PRELUDE,
} from "./status";

/** Version of the prelude ABI below; bumped when the out layout changes. */
export function frameVersion(): i32 {
  return 1;
}

/**
 * Parses the prelude of one message from `inLen` bytes at `inPtr` (any prefix of the message).
 * Limits arrive as f64 holding exact integers <= 2^53-1 (validated by the TS side), so no BigInt
 * crosses the boundary. `maxMessageBytes` bounds the bytes after the leading u64 (8 + 8n + Σlen).
 *
 * Writes f64 values at `outPtr` (caller-owned, >= 24 + 8*nframes bytes, i.e. <= inLen + 24):
 *   out[0] bytes needed (NEED_MORE) or whole message size in bytes (OK)
 *   out[1] frames counted by N (== nframes for 2022 messages), out[2] nframes
 *   out[3 + i] len[i]
 * Returns STATUS_OK, STATUS_NEED_MORE (out[0] says how many bytes to come back with), or an
 * ERR_FRAME_* / ERR_MESSAGE_* / ERR_TOO_MANY_FRAMES code; on error out[1] = index of the
 * offending frame where there is one, else -1. Errors are reported as early as the bytes allow:
 * N is checked at 8 bytes and nframes at 16, so a hostile count is refused before anyone
 * buffers 8*nframes bytes.
 */
export function framePreludeParse(
  inPtr: usize,
  inLen: usize,
  outPtr: usize,
  maxFrameBytes: f64,
  maxMessageBytes: f64,
  maxFrames: f64,
): i32 {
  store<f64>(outPtr, -1, 8); // out[1] default: no offending frame
  if (inLen < 8) {
    store<f64>(outPtr, 8);
    return STATUS_NEED_MORE;
  }
  const maxMsg = <u64>maxMessageBytes;
  const maxLen = <u64>maxFrameBytes;
  const total = load<u64>(inPtr);
  if (total > maxMsg) return ERR_MESSAGE_TOO_LARGE;
  if (inLen < 16) {
    store<f64>(outPtr, 16);
    return STATUS_NEED_MORE;
  }
  const n = load<u64>(inPtr, 8);
  if (n > <u64>maxFrames) return ERR_TOO_MANY_FRAMES;
  // n <= maxFrames < 2^31 here, so 8 + 8n cannot overflow
  const prelude: u64 = 8 + (n << 3);
  if (total < prelude) return ERR_FRAME_BAD_PRELUDE; // N must at least cover the prelude
  const headerLen: u64 = 8 + prelude;
  if (<u64>inLen < headerLen) {
    store<f64>(outPtr, <f64>headerLen);
    return STATUS_NEED_MORE;
  }
  const nosplit: u64 = total - prelude; // frame bytes N claims to count
  let counted: i64 = nosplit == 0 ? 0 : -1;
  let sum: u64 = 0;
  const count = <i32>n;
  for (let i = 0; i < count; i++) {
    const len = load<u64>(inPtr + 16 + (<usize>i << 3));
    if (len > maxLen) {
      store<f64>(outPtr, <f64>i, 8);
      return ERR_FRAME_TOO_LARGE;
    }
    // Each len <= maxLen <= 2^53 and sum <= maxMsg <= 2^53 before adding, so the u64 sum
    // cannot wrap; checking after every addition keeps that true for the next one.
    sum += len;
    if (prelude + sum > maxMsg) {
      store<f64>(outPtr, <f64>i, 8);
      return ERR_MESSAGE_TOO_LARGE;
    }
    store<f64>(outPtr + 24 + (<usize>i << 3), <f64>len);
    if (counted < 0 && sum == nosplit) counted = i + 1;
  }
  // N larger than everything the prelude announces: frames shorter than N claims
  if (nosplit > sum) return ERR_FRAME_BAD_PRELUDE;
  // N inside a frame: the 2026 writer only ever splits on a frame boundary
  if (counted < 0) return ERR_FRAME_BAD_PRELUDE;
  store<f64>(outPtr, <f64>(headerLen + sum));
  store<f64>(outPtr, <f64>counted, 8);
  store<f64>(outPtr, <f64>n, 16);
  return STATUS_OK;
}
