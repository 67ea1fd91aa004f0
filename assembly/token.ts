// Token kernel: MD5 (RFC 1321) over many inputs in one call, for task keys (src/tokens.ts).
// Role: hash bytes. It does not know the canonical encoding (that is TS, src/tokens.ts), does
// not allocate (runtime stub: one static 128-byte padding block), and never traps on bad input:
// inconsistent tables return ERR_TOKEN_INPUT.
//
// Why MD5: dask's tokenize is md5 of a deterministic representation, node:crypto is the oracle
// in tests, and the keys only need to be stable and collision-free for honest inputs (not a
// security boundary: a client can name any key it likes anyway).
//
// Memory contract (both regions are module-owned, assembly/memory.ts):
//   REGION_TOKEN_IN  = [table: count x (u32 offset, u32 length), little-endian]
//                      [data: dataLen bytes]; offsets are relative to the start of data.
//   REGION_TOKEN_OUT = count x 16 raw digest bytes (hex = 0) or count x 32 lowercase ASCII hex
//                      characters (hex = 1), in table order.
// MD5 reads its 32-bit words little-endian, and Wasm loads are little-endian on every host,
// so `load<u32>` is exactly RFC 1321's decode() whatever the machine's own byte order.
import { REGION_TOKEN_IN, REGION_TOKEN_OUT, ERR_TOKEN_INPUT, ERR_BAD_ARGUMENT } from "./status";
import { regionCapacity, region } from "./memory";

/** ABI version of md5Batch's region layout (src/wasm/token.ts checks it). */
export function tokenVersion(): i32 {
  return 1;
}

// The running MD5 state (A, B, C, D of RFC 1321 §3.3); globals so compress() needs no pointer.
let h0: u32 = 0;
let h1: u32 = 0;
let h2: u32 = 0;
let h3: u32 = 0;

// Final one or two blocks: the tail of the input, 0x80, zeros and the bit length (RFC §3.1-3.2).
const PAD: usize = memory.data(128);

// The four auxiliary functions (RFC §3.4), in the forms with one fewer operation:
// F = (b & c) | (~b & d) = d ^ (b & (c ^ d)); G = (b & d) | (c & ~d) = c ^ (d & (b ^ c)).
@inline function ff(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + (d ^ (b & (c ^ d))) + x + t, s) + b;
}
@inline function gg(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + (c ^ (d & (b ^ c))) + x + t, s) + b;
}
@inline function hh(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + (b ^ c ^ d) + x + t, s) + b;
}
@inline function ii(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + (c ^ (b | ~d)) + x + t, s) + b;
}

/** One 64-byte block at p into (h0..h3); the 64 steps of RFC §3.4, fully unrolled. */
function compress(p: usize): void {
  const x0 = load<u32>(p, 0), x1 = load<u32>(p, 4), x2 = load<u32>(p, 8), x3 = load<u32>(p, 12);
  const x4 = load<u32>(p, 16), x5 = load<u32>(p, 20), x6 = load<u32>(p, 24), x7 = load<u32>(p, 28);
  const x8 = load<u32>(p, 32), x9 = load<u32>(p, 36), x10 = load<u32>(p, 40), x11 = load<u32>(p, 44);
  const x12 = load<u32>(p, 48), x13 = load<u32>(p, 52), x14 = load<u32>(p, 56), x15 = load<u32>(p, 60);
  let a = h0, b = h1, c = h2, d = h3;

  // Round 1
  a = ff(a, b, c, d, x0, 7, 0xd76aa478); d = ff(d, a, b, c, x1, 12, 0xe8c7b756);
  c = ff(c, d, a, b, x2, 17, 0x242070db); b = ff(b, c, d, a, x3, 22, 0xc1bdceee);
  a = ff(a, b, c, d, x4, 7, 0xf57c0faf); d = ff(d, a, b, c, x5, 12, 0x4787c62a);
  c = ff(c, d, a, b, x6, 17, 0xa8304613); b = ff(b, c, d, a, x7, 22, 0xfd469501);
  a = ff(a, b, c, d, x8, 7, 0x698098d8); d = ff(d, a, b, c, x9, 12, 0x8b44f7af);
  c = ff(c, d, a, b, x10, 17, 0xffff5bb1); b = ff(b, c, d, a, x11, 22, 0x895cd7be);
  a = ff(a, b, c, d, x12, 7, 0x6b901122); d = ff(d, a, b, c, x13, 12, 0xfd987193);
  c = ff(c, d, a, b, x14, 17, 0xa679438e); b = ff(b, c, d, a, x15, 22, 0x49b40821);
  // Round 2
  a = gg(a, b, c, d, x1, 5, 0xf61e2562); d = gg(d, a, b, c, x6, 9, 0xc040b340);
  c = gg(c, d, a, b, x11, 14, 0x265e5a51); b = gg(b, c, d, a, x0, 20, 0xe9b6c7aa);
  a = gg(a, b, c, d, x5, 5, 0xd62f105d); d = gg(d, a, b, c, x10, 9, 0x02441453);
  c = gg(c, d, a, b, x15, 14, 0xd8a1e681); b = gg(b, c, d, a, x4, 20, 0xe7d3fbc8);
  a = gg(a, b, c, d, x9, 5, 0x21e1cde6); d = gg(d, a, b, c, x14, 9, 0xc33707d6);
  c = gg(c, d, a, b, x3, 14, 0xf4d50d87); b = gg(b, c, d, a, x8, 20, 0x455a14ed);
  a = gg(a, b, c, d, x13, 5, 0xa9e3e905); d = gg(d, a, b, c, x2, 9, 0xfcefa3f8);
  c = gg(c, d, a, b, x7, 14, 0x676f02d9); b = gg(b, c, d, a, x12, 20, 0x8d2a4c8a);
  // Round 3
  a = hh(a, b, c, d, x5, 4, 0xfffa3942); d = hh(d, a, b, c, x8, 11, 0x8771f681);
  c = hh(c, d, a, b, x11, 16, 0x6d9d6122); b = hh(b, c, d, a, x14, 23, 0xfde5380c);
  a = hh(a, b, c, d, x1, 4, 0xa4beea44); d = hh(d, a, b, c, x4, 11, 0x4bdecfa9);
  c = hh(c, d, a, b, x7, 16, 0xf6bb4b60); b = hh(b, c, d, a, x10, 23, 0xbebfbc70);
  a = hh(a, b, c, d, x13, 4, 0x289b7ec6); d = hh(d, a, b, c, x0, 11, 0xeaa127fa);
  c = hh(c, d, a, b, x3, 16, 0xd4ef3085); b = hh(b, c, d, a, x6, 23, 0x04881d05);
  a = hh(a, b, c, d, x9, 4, 0xd9d4d039); d = hh(d, a, b, c, x12, 11, 0xe6db99e5);
  c = hh(c, d, a, b, x15, 16, 0x1fa27cf8); b = hh(b, c, d, a, x2, 23, 0xc4ac5665);
  // Round 4
  a = ii(a, b, c, d, x0, 6, 0xf4292244); d = ii(d, a, b, c, x7, 10, 0x432aff97);
  c = ii(c, d, a, b, x14, 15, 0xab9423a7); b = ii(b, c, d, a, x5, 21, 0xfc93a039);
  a = ii(a, b, c, d, x12, 6, 0x655b59c3); d = ii(d, a, b, c, x3, 10, 0x8f0ccc92);
  c = ii(c, d, a, b, x10, 15, 0xffeff47d); b = ii(b, c, d, a, x1, 21, 0x85845dd1);
  a = ii(a, b, c, d, x8, 6, 0x6fa87e4f); d = ii(d, a, b, c, x15, 10, 0xfe2ce6e0);
  c = ii(c, d, a, b, x6, 15, 0xa3014314); b = ii(b, c, d, a, x13, 21, 0x4e0811a1);
  a = ii(a, b, c, d, x4, 6, 0xf7537e82); d = ii(d, a, b, c, x11, 10, 0xbd3af235);
  c = ii(c, d, a, b, x2, 15, 0x2ad7d2bb); b = ii(b, c, d, a, x9, 21, 0xeb86d391);

  h0 += a;
  h1 += b;
  h2 += c;
  h3 += d;
}

/** MD5 of len bytes at p into the state h0..h3 (initial values from RFC §3.3). */
function md5Into(p: usize, len: usize): void {
  h0 = 0x67452301;
  h1 = 0xefcdab89;
  h2 = 0x98badcfe;
  h3 = 0x10325476;
  const full = len & ~(<usize>63);
  for (let off: usize = 0; off < full; off += 64) compress(p + off);
  // Tail: copy what is left into PAD, append 0x80 and zeros up to 56 mod 64, then the length
  // in bits as a little-endian u64 (RFC §3.1-3.2). A tail of 56+ bytes needs a second block.
  const rest = len - full;
  memory.copy(PAD, p + full, rest);
  store<u8>(PAD + rest, 0x80);
  const blocks: usize = rest < 56 ? 64 : 128;
  memory.fill(PAD + rest + 1, 0, blocks - 8 - rest - 1);
  store<u64>(PAD + blocks - 8, (<u64>len) << 3);
  compress(PAD);
  if (blocks == 128) compress(PAD + 64);
}

/** Two lowercase hex digits of byte v, as one little-endian u16 (first digit in the low byte). */
@inline function hexPair(v: u32): u32 {
  const hi = <i32>(v >> 4);
  const lo = <i32>(v & 15);
  // '0' = 48, 'a' - 10 = 87: (9 - n) >> 31 is all ones exactly when n > 9 (arithmetic shift).
  const chi = hi + 48 + (((9 - hi) >> 31) & 39);
  const clo = lo + 48 + (((9 - lo) >> 31) & 39);
  return <u32>(chi | (clo << 8));
}

@inline function storeHexWord(out: usize, w: u32): void {
  // A digest word's bytes go out low byte first (RFC §3.5), two hex digits per byte.
  store<u16>(out, <u16>hexPair(w & 0xff), 0);
  store<u16>(out, <u16>hexPair((w >> 8) & 0xff), 2);
  store<u16>(out, <u16>hexPair((w >> 16) & 0xff), 4);
  store<u16>(out, <u16>hexPair(w >> 24), 6);
}

/**
 * MD5 of `count` inputs described by the table at the start of REGION_TOKEN_IN (see header),
 * digests (hex = 0, 16 bytes each) or hex strings (hex = 1, 32 ASCII bytes each) written to
 * REGION_TOKEN_OUT. `dataLen` is the byte length of the data area after the table.
 * Returns count, ERR_BAD_ARGUMENT if the regions are smaller than the layout needs, or
 * ERR_TOKEN_INPUT if an entry reaches outside the data area (digests before it are written).
 * Touches only the two token regions and the static padding block.
 */
export function md5Batch(count: i32, dataLen: u32, hex: i32): i32 {
  if (count < 0) return ERR_BAD_ARGUMENT;
  const n = <u64>count;
  const outSize: u64 = hex != 0 ? 32 : 16;
  if (<u64>regionCapacity(REGION_TOKEN_IN) < n * 8 + <u64>dataLen) return ERR_BAD_ARGUMENT;
  if (<u64>regionCapacity(REGION_TOKEN_OUT) < n * outSize) return ERR_BAD_ARGUMENT;
  if (count == 0) return 0;
  // Capacities are non-zero here, so region() returns the existing pointers without allocating.
  const table = region(REGION_TOKEN_IN, 0);
  const data = table + (<usize>count << 3);
  let out = region(REGION_TOKEN_OUT, 0);
  for (let i = 0; i < count; i++) {
    const off = load<u32>(table + (<usize>i << 3));
    const len = load<u32>(table + (<usize>i << 3), 4);
    if (<u64>off + <u64>len > <u64>dataLen) return ERR_TOKEN_INPUT;
    md5Into(data + off, len);
    if (hex != 0) {
      storeHexWord(out, h0);
      storeHexWord(out + 8, h1);
      storeHexWord(out + 16, h2);
      storeHexWord(out + 24, h3);
      out += 32;
    } else {
      store<u32>(out, h0, 0);
      store<u32>(out, h1, 4);
      store<u32>(out, h2, 8);
      store<u32>(out, h3, 12);
      out += 16;
    }
  }
  return count;
}
