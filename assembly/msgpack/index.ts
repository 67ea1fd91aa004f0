// msgpack decoder kernel: validates one whole msgpack value and flattens it into a tape, in ONE
// call per message (STYLE.md §3 "cross once per message"). JS (src/wasm/msgpack.ts) then walks the
// tape and builds the values; strings and bins are read by JS from its own copy of the input, so
// only offsets cross back. The TS twin is src/protocol/msgpack-js.ts: both must return the same
// status for the same bytes (same checks, in the same order).
//
// Does NOT: build values, decode strings into JS, encode (encoding stays in JS: see the binding),
// keep state between calls other than its grown buffers.
//
// Tape: 3 x u32 per token, [tag, a, b], offsets relative to the start of the input:
//   TAG_NIL/FALSE/TRUE             -
//   TAG_UINT   a = value (u32)      TAG_INT  a = value (i32, negative)
//   TAG_UINT64 / TAG_INT64 / TAG_FLOAT32 / TAG_FLOAT64   a = offset of the big-endian payload
//   TAG_STR_ASCII / TAG_STR_UTF8 / TAG_BIN                a = offset, b = byte length
//   TAG_ARRAY  a = item count       TAG_MAP  a = entry count (2a tokens' values follow)
// Every str is UTF-8-validated here; TAG_STR_ASCII means all bytes < 0x80.
import {
  ERR_MSGPACK_INVALID,
  ERR_MSGPACK_TOO_DEEP,
  ERR_MSGPACK_EXT,
  ERR_MSGPACK_TRAILING,
  ERR_MSGPACK_UTF8,
  ERR_MSGPACK_TRUNCATED,
  ERR_MSGPACK_STR_TOO_LARGE,
  ERR_MSGPACK_BIN_TOO_LARGE,
  ERR_MSGPACK_ARRAY_TOO_LONG,
  ERR_MSGPACK_MAP_TOO_LONG,
  REGION_MSGPACK_TAPE,
} from "../status";
import { region } from "../memory";

const TAG_NIL: u32 = 0;
const TAG_FALSE: u32 = 1;
const TAG_TRUE: u32 = 2;
const TAG_UINT: u32 = 3;
const TAG_INT: u32 = 4;
const TAG_UINT64: u32 = 5;
const TAG_INT64: u32 = 6;
const TAG_FLOAT32: u32 = 7;
const TAG_FLOAT64: u32 = 8;
const TAG_STR_ASCII: u32 = 9;
const TAG_STR_UTF8: u32 = 10;
const TAG_BIN: u32 = 11;
const TAG_ARRAY: u32 = 12;
const TAG_MAP: u32 = 13;

const TOKEN_BYTES: usize = 12;

// Results of the last call (read through the getters below).
let tapePtr: usize = 0;
let tapeCap: usize = 0; // tokens
let errorPos: u32 = 0;

// Stack of "values still expected" per open container; grown on demand (never to maxDepth
// up front, so a huge maxDepth costs nothing unless the input really nests that deep).
let stackPtr: usize = 0;
let stackCap: u32 = 0;

/** ABI version of the tape layout above. */
export function msgpackVersion(): i32 {
  return 1;
}

/** Pointer to the tape written by the last msgpackDecode (it may move between calls). */
export function msgpackTapePtr(): usize {
  return tapePtr;
}

/** Byte offset (from the input start) where the last failing msgpackDecode stopped. */
export function msgpackErrorPos(): u32 {
  return errorPos;
}

@inline function be16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

@inline function be32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

/** Makes room for one more token; the old tape is copied (the stub allocator never frees). */
function growTape(used: usize): void {
  let want = tapeCap == 0 ? <usize>1024 : tapeCap * 2;
  let ptr = region(REGION_MSGPACK_TAPE, want * TOKEN_BYTES);
  // region() returns 0 for >= 2 GiB; then a store below traps and JS rebuilds the instance.
  if (used > 0 && ptr != tapePtr) memory.copy(ptr, tapePtr, used * TOKEN_BYTES);
  tapePtr = ptr;
  tapeCap = want;
}

function growStack(): void {
  let want: u32 = stackCap == 0 ? 64 : stackCap * 2;
  let ptr = heap.alloc(<usize>want << 2);
  if (stackCap > 0) memory.copy(ptr, stackPtr, <usize>stackCap << 2);
  stackPtr = ptr;
  stackCap = want;
}

/**
 * Validates `len` bytes at `p` as UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * Returns 1 if all ASCII, 0 if valid non-ASCII, -1 if invalid.
 */
function utf8Check(p: usize, len: usize): i32 {
  let end = p + len;
  // 8 bytes at a time while everything is ASCII (most dask strings are)
  while (p + 8 <= end && (load<u64>(p) & 0x8080808080808080) == 0) p += 8;
  let ascii: i32 = 1;
  while (p < end) {
    let c = <u32>load<u8>(p);
    if (c < 0x80) {
      p++;
      continue;
    }
    ascii = 0;
    let lo: u32 = 0x80;
    let hi: u32 = 0xbf;
    let n: usize;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0; // overlong
      else if (c == 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90; // overlong
      else if (c == 0xf4) hi = 0x8f; // > U+10FFFF
    } else return -1;
    if (p + n >= end) return -1; // fewer than n continuation bytes left
    let c1 = <u32>load<u8>(p + 1);
    if (c1 < lo || c1 > hi) return -1;
    for (let i: usize = 2; i <= n; i++) {
      let ci = <u32>load<u8>(p + i);
      if ((ci & 0xc0) != 0x80) return -1;
    }
    p += n + 1;
  }
  return ascii;
}

/**
 * Decodes exactly one msgpack value from `inLen` bytes at `inPtr` (region REGION_MSGPACK_IN)
 * into the tape (region REGION_MSGPACK_TAPE; pointer via msgpackTapePtr()).
 * Limits are the DecodeLimits of the TS side (all u32). Returns the token count (>= 1) or a
 * negative status (ERR_MSGPACK_*), with msgpackErrorPos() set. Never allocates the size a
 * length field claims: lengths are checked against the limits and the bytes left first.
 */
export function msgpackDecode(
  inPtr: usize,
  inLen: u32,
  maxDepth: u32,
  maxStr: u32,
  maxBin: u32,
  maxArr: u32,
  maxMap: u32,
): i32 {
  let p = inPtr;
  let end = inPtr + <usize>inLen;
  let ntok: usize = 0;
  let sp: u32 = 0; // open containers
  if (tapeCap == 0) growTape(0);
  let tape = tapePtr;

  while (true) {
    if (p >= end) return fail(ERR_MSGPACK_TRUNCATED, p, inPtr);
    let start = p;
    let b = <u32>load<u8>(p++);
    let tag: u32 = 0;
    let a: u32 = 0;
    let l: u32 = 0;
    let count: u64 = 0; // values a container still expects (items, or 2 x entries)
    let container = false;
    let kind: i32 = 0; // 1 str, 2 bin, 3 array, 4 map (lengths checked below)

    if (b <= 0x7f) {
      tag = TAG_UINT;
      a = b;
    } else if (b >= 0xe0) {
      tag = TAG_INT;
      a = b | 0xffffff00;
    } else if (b <= 0x8f) {
      kind = 4;
      l = b & 0x0f;
    } else if (b <= 0x9f) {
      kind = 3;
      l = b & 0x0f;
    } else if (b <= 0xbf) {
      kind = 1;
      l = b & 0x1f;
    } else {
      // The header bytes each form needs after its type byte.
      let need: usize = 0;
      switch (b) {
        case 0xc4: case 0xcc: case 0xd0: case 0xd9: need = 1; break;
        case 0xc5: case 0xcd: case 0xd1: case 0xda: case 0xdc: case 0xde: need = 2; break;
        case 0xc6: case 0xca: case 0xce: case 0xd2: case 0xdb: case 0xdd: case 0xdf: need = 4; break;
        case 0xcb: case 0xcf: case 0xd3: need = 8; break;
        default: break;
      }
      if (b == 0xc1) return fail(ERR_MSGPACK_INVALID, start, inPtr);
      if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) return fail(ERR_MSGPACK_EXT, start, inPtr);
      if (p + need > end) return fail(ERR_MSGPACK_TRUNCATED, p, inPtr);
      let off = <u32>(p - inPtr);
      switch (b) {
        case 0xc0: tag = TAG_NIL; break;
        case 0xc2: tag = TAG_FALSE; break;
        case 0xc3: tag = TAG_TRUE; break;
        case 0xc4: kind = 2; l = load<u8>(p); break;
        case 0xc5: kind = 2; l = be16(p); break;
        case 0xc6: kind = 2; l = be32(p); break;
        case 0xca: tag = TAG_FLOAT32; a = off; break;
        case 0xcb: tag = TAG_FLOAT64; a = off; break;
        case 0xcc: tag = TAG_UINT; a = load<u8>(p); break;
        case 0xcd: tag = TAG_UINT; a = be16(p); break;
        case 0xce: tag = TAG_UINT; a = be32(p); break;
        case 0xcf: tag = TAG_UINT64; a = off; break;
        case 0xd0: tag = TAG_INT; a = <u32><i32>load<i8>(p); break;
        case 0xd1: tag = TAG_INT; a = <u32><i32>bswap<i16>(load<i16>(p)); break;
        case 0xd2: tag = TAG_INT; a = be32(p); break;
        case 0xd3: tag = TAG_INT64; a = off; break;
        case 0xd9: kind = 1; l = load<u8>(p); break;
        case 0xda: kind = 1; l = be16(p); break;
        case 0xdb: kind = 1; l = be32(p); break;
        case 0xdc: kind = 3; l = be16(p); break;
        case 0xdd: kind = 3; l = be32(p); break;
        case 0xde: kind = 4; l = be16(p); break;
        case 0xdf: kind = 4; l = be32(p); break;
        default: break;
      }
      p += need;
    }

    let left = <u64>(end - p);
    if (kind == 1) {
      // str: limit, then presence, then UTF-8 (the twin's order)
      if (l > maxStr) return fail(ERR_MSGPACK_STR_TOO_LARGE, start, inPtr);
      if (<u64>l > left) return fail(ERR_MSGPACK_TRUNCATED, p, inPtr);
      let v = utf8Check(p, l);
      if (v < 0) return fail(ERR_MSGPACK_UTF8, start, inPtr);
      tag = v == 1 ? TAG_STR_ASCII : TAG_STR_UTF8;
      a = <u32>(p - inPtr);
      p += l;
    } else if (kind == 2) {
      if (l > maxBin) return fail(ERR_MSGPACK_BIN_TOO_LARGE, start, inPtr);
      if (<u64>l > left) return fail(ERR_MSGPACK_TRUNCATED, p, inPtr);
      tag = TAG_BIN;
      a = <u32>(p - inPtr);
      p += l;
    } else if (kind == 3) {
      if (l > maxArr) return fail(ERR_MSGPACK_ARRAY_TOO_LONG, start, inPtr);
      if (sp >= maxDepth) return fail(ERR_MSGPACK_TOO_DEEP, start, inPtr);
      // each item needs >= 1 byte: a claimed length beyond the input is truncation
      if (<u64>l > left) return fail(ERR_MSGPACK_TRUNCATED, start, inPtr);
      tag = TAG_ARRAY;
      a = l;
      count = <u64>l;
      container = true;
    } else if (kind == 4) {
      if (l > maxMap) return fail(ERR_MSGPACK_MAP_TOO_LONG, start, inPtr);
      if (sp >= maxDepth) return fail(ERR_MSGPACK_TOO_DEEP, start, inPtr);
      if ((<u64>l << 1) > left) return fail(ERR_MSGPACK_TRUNCATED, start, inPtr);
      tag = TAG_MAP;
      a = l;
      count = <u64>l << 1;
      container = true;
    }

    if (ntok == tapeCap) {
      growTape(ntok);
      tape = tapePtr;
    }
    let t = tape + ntok * TOKEN_BYTES;
    store<u32>(t, tag);
    store<u32>(t, a, 4);
    store<u32>(t, kind == 1 || kind == 2 ? l : 0, 8);
    ntok++;

    if (container && count > 0) {
      if (sp == stackCap) growStack();
      // count <= 2 * maxMap < 2^33 but also <= bytes left < 2^32, so it fits a u32
      store<u32>(stackPtr + (<usize>sp << 2), <u32>count);
      sp++;
      continue;
    }
    // One value finished: close every container it completes.
    while (sp > 0) {
      let slot = stackPtr + (<usize>(sp - 1) << 2);
      let rest = load<u32>(slot) - 1;
      if (rest != 0) {
        store<u32>(slot, rest);
        break;
      }
      sp--;
    }
    if (sp == 0) break;
  }
  if (p != end) return fail(ERR_MSGPACK_TRAILING, p, inPtr);
  return <i32>ntok;
}

@inline function fail(status: i32, at: usize, inPtr: usize): i32 {
  errorPos = <u32>(at - inPtr);
  return status;
}
