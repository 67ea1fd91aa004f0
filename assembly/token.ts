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

// Two messages at once. MD5 is one long dependency chain (each step needs the previous one),
// so a single message leaves most of the CPU's integer units idle; interleaving the steps of
// two independent messages lets them run side by side ("multi-buffer" hashing, as in
// OpenSSL's and Intel's multi-buffer MD5/SHA code). Words are loaded where used, not into
// locals, to keep the eight state registers out of spill slots.
let g0: u32 = 0;
let g1: u32 = 0;
let g2: u32 = 0;
let g3: u32 = 0;

// Tail blocks of the second message of a pair.
const PAD2: usize = memory.data(128);

/** One block at p into (h0..h3) and one at q into (g0..g3), steps interleaved. */
function compress2(p: usize, q: usize): void {
  let a = h0, b = h1, c = h2, d = h3;
  let e = g0, f = g1, g = g2, h = g3;
  a = ff(a, b, c, d, load<u32>(p, 0), 7, 0xd76aa478); e = ff(e, f, g, h, load<u32>(q, 0), 7, 0xd76aa478);
  d = ff(d, a, b, c, load<u32>(p, 4), 12, 0xe8c7b756); h = ff(h, e, f, g, load<u32>(q, 4), 12, 0xe8c7b756);
  c = ff(c, d, a, b, load<u32>(p, 8), 17, 0x242070db); g = ff(g, h, e, f, load<u32>(q, 8), 17, 0x242070db);
  b = ff(b, c, d, a, load<u32>(p, 12), 22, 0xc1bdceee); f = ff(f, g, h, e, load<u32>(q, 12), 22, 0xc1bdceee);
  a = ff(a, b, c, d, load<u32>(p, 16), 7, 0xf57c0faf); e = ff(e, f, g, h, load<u32>(q, 16), 7, 0xf57c0faf);
  d = ff(d, a, b, c, load<u32>(p, 20), 12, 0x4787c62a); h = ff(h, e, f, g, load<u32>(q, 20), 12, 0x4787c62a);
  c = ff(c, d, a, b, load<u32>(p, 24), 17, 0xa8304613); g = ff(g, h, e, f, load<u32>(q, 24), 17, 0xa8304613);
  b = ff(b, c, d, a, load<u32>(p, 28), 22, 0xfd469501); f = ff(f, g, h, e, load<u32>(q, 28), 22, 0xfd469501);
  a = ff(a, b, c, d, load<u32>(p, 32), 7, 0x698098d8); e = ff(e, f, g, h, load<u32>(q, 32), 7, 0x698098d8);
  d = ff(d, a, b, c, load<u32>(p, 36), 12, 0x8b44f7af); h = ff(h, e, f, g, load<u32>(q, 36), 12, 0x8b44f7af);
  c = ff(c, d, a, b, load<u32>(p, 40), 17, 0xffff5bb1); g = ff(g, h, e, f, load<u32>(q, 40), 17, 0xffff5bb1);
  b = ff(b, c, d, a, load<u32>(p, 44), 22, 0x895cd7be); f = ff(f, g, h, e, load<u32>(q, 44), 22, 0x895cd7be);
  a = ff(a, b, c, d, load<u32>(p, 48), 7, 0x6b901122); e = ff(e, f, g, h, load<u32>(q, 48), 7, 0x6b901122);
  d = ff(d, a, b, c, load<u32>(p, 52), 12, 0xfd987193); h = ff(h, e, f, g, load<u32>(q, 52), 12, 0xfd987193);
  c = ff(c, d, a, b, load<u32>(p, 56), 17, 0xa679438e); g = ff(g, h, e, f, load<u32>(q, 56), 17, 0xa679438e);
  b = ff(b, c, d, a, load<u32>(p, 60), 22, 0x49b40821); f = ff(f, g, h, e, load<u32>(q, 60), 22, 0x49b40821);
  a = gg(a, b, c, d, load<u32>(p, 4), 5, 0xf61e2562); e = gg(e, f, g, h, load<u32>(q, 4), 5, 0xf61e2562);
  d = gg(d, a, b, c, load<u32>(p, 24), 9, 0xc040b340); h = gg(h, e, f, g, load<u32>(q, 24), 9, 0xc040b340);
  c = gg(c, d, a, b, load<u32>(p, 44), 14, 0x265e5a51); g = gg(g, h, e, f, load<u32>(q, 44), 14, 0x265e5a51);
  b = gg(b, c, d, a, load<u32>(p, 0), 20, 0xe9b6c7aa); f = gg(f, g, h, e, load<u32>(q, 0), 20, 0xe9b6c7aa);
  a = gg(a, b, c, d, load<u32>(p, 20), 5, 0xd62f105d); e = gg(e, f, g, h, load<u32>(q, 20), 5, 0xd62f105d);
  d = gg(d, a, b, c, load<u32>(p, 40), 9, 0x02441453); h = gg(h, e, f, g, load<u32>(q, 40), 9, 0x02441453);
  c = gg(c, d, a, b, load<u32>(p, 60), 14, 0xd8a1e681); g = gg(g, h, e, f, load<u32>(q, 60), 14, 0xd8a1e681);
  b = gg(b, c, d, a, load<u32>(p, 16), 20, 0xe7d3fbc8); f = gg(f, g, h, e, load<u32>(q, 16), 20, 0xe7d3fbc8);
  a = gg(a, b, c, d, load<u32>(p, 36), 5, 0x21e1cde6); e = gg(e, f, g, h, load<u32>(q, 36), 5, 0x21e1cde6);
  d = gg(d, a, b, c, load<u32>(p, 56), 9, 0xc33707d6); h = gg(h, e, f, g, load<u32>(q, 56), 9, 0xc33707d6);
  c = gg(c, d, a, b, load<u32>(p, 12), 14, 0xf4d50d87); g = gg(g, h, e, f, load<u32>(q, 12), 14, 0xf4d50d87);
  b = gg(b, c, d, a, load<u32>(p, 32), 20, 0x455a14ed); f = gg(f, g, h, e, load<u32>(q, 32), 20, 0x455a14ed);
  a = gg(a, b, c, d, load<u32>(p, 52), 5, 0xa9e3e905); e = gg(e, f, g, h, load<u32>(q, 52), 5, 0xa9e3e905);
  d = gg(d, a, b, c, load<u32>(p, 8), 9, 0xfcefa3f8); h = gg(h, e, f, g, load<u32>(q, 8), 9, 0xfcefa3f8);
  c = gg(c, d, a, b, load<u32>(p, 28), 14, 0x676f02d9); g = gg(g, h, e, f, load<u32>(q, 28), 14, 0x676f02d9);
  b = gg(b, c, d, a, load<u32>(p, 48), 20, 0x8d2a4c8a); f = gg(f, g, h, e, load<u32>(q, 48), 20, 0x8d2a4c8a);
  a = hh(a, b, c, d, load<u32>(p, 20), 4, 0xfffa3942); e = hh(e, f, g, h, load<u32>(q, 20), 4, 0xfffa3942);
  d = hh(d, a, b, c, load<u32>(p, 32), 11, 0x8771f681); h = hh(h, e, f, g, load<u32>(q, 32), 11, 0x8771f681);
  c = hh(c, d, a, b, load<u32>(p, 44), 16, 0x6d9d6122); g = hh(g, h, e, f, load<u32>(q, 44), 16, 0x6d9d6122);
  b = hh(b, c, d, a, load<u32>(p, 56), 23, 0xfde5380c); f = hh(f, g, h, e, load<u32>(q, 56), 23, 0xfde5380c);
  a = hh(a, b, c, d, load<u32>(p, 4), 4, 0xa4beea44); e = hh(e, f, g, h, load<u32>(q, 4), 4, 0xa4beea44);
  d = hh(d, a, b, c, load<u32>(p, 16), 11, 0x4bdecfa9); h = hh(h, e, f, g, load<u32>(q, 16), 11, 0x4bdecfa9);
  c = hh(c, d, a, b, load<u32>(p, 28), 16, 0xf6bb4b60); g = hh(g, h, e, f, load<u32>(q, 28), 16, 0xf6bb4b60);
  b = hh(b, c, d, a, load<u32>(p, 40), 23, 0xbebfbc70); f = hh(f, g, h, e, load<u32>(q, 40), 23, 0xbebfbc70);
  a = hh(a, b, c, d, load<u32>(p, 52), 4, 0x289b7ec6); e = hh(e, f, g, h, load<u32>(q, 52), 4, 0x289b7ec6);
  d = hh(d, a, b, c, load<u32>(p, 0), 11, 0xeaa127fa); h = hh(h, e, f, g, load<u32>(q, 0), 11, 0xeaa127fa);
  c = hh(c, d, a, b, load<u32>(p, 12), 16, 0xd4ef3085); g = hh(g, h, e, f, load<u32>(q, 12), 16, 0xd4ef3085);
  b = hh(b, c, d, a, load<u32>(p, 24), 23, 0x04881d05); f = hh(f, g, h, e, load<u32>(q, 24), 23, 0x04881d05);
  a = hh(a, b, c, d, load<u32>(p, 36), 4, 0xd9d4d039); e = hh(e, f, g, h, load<u32>(q, 36), 4, 0xd9d4d039);
  d = hh(d, a, b, c, load<u32>(p, 48), 11, 0xe6db99e5); h = hh(h, e, f, g, load<u32>(q, 48), 11, 0xe6db99e5);
  c = hh(c, d, a, b, load<u32>(p, 60), 16, 0x1fa27cf8); g = hh(g, h, e, f, load<u32>(q, 60), 16, 0x1fa27cf8);
  b = hh(b, c, d, a, load<u32>(p, 8), 23, 0xc4ac5665); f = hh(f, g, h, e, load<u32>(q, 8), 23, 0xc4ac5665);
  a = ii(a, b, c, d, load<u32>(p, 0), 6, 0xf4292244); e = ii(e, f, g, h, load<u32>(q, 0), 6, 0xf4292244);
  d = ii(d, a, b, c, load<u32>(p, 28), 10, 0x432aff97); h = ii(h, e, f, g, load<u32>(q, 28), 10, 0x432aff97);
  c = ii(c, d, a, b, load<u32>(p, 56), 15, 0xab9423a7); g = ii(g, h, e, f, load<u32>(q, 56), 15, 0xab9423a7);
  b = ii(b, c, d, a, load<u32>(p, 20), 21, 0xfc93a039); f = ii(f, g, h, e, load<u32>(q, 20), 21, 0xfc93a039);
  a = ii(a, b, c, d, load<u32>(p, 48), 6, 0x655b59c3); e = ii(e, f, g, h, load<u32>(q, 48), 6, 0x655b59c3);
  d = ii(d, a, b, c, load<u32>(p, 12), 10, 0x8f0ccc92); h = ii(h, e, f, g, load<u32>(q, 12), 10, 0x8f0ccc92);
  c = ii(c, d, a, b, load<u32>(p, 40), 15, 0xffeff47d); g = ii(g, h, e, f, load<u32>(q, 40), 15, 0xffeff47d);
  b = ii(b, c, d, a, load<u32>(p, 4), 21, 0x85845dd1); f = ii(f, g, h, e, load<u32>(q, 4), 21, 0x85845dd1);
  a = ii(a, b, c, d, load<u32>(p, 32), 6, 0x6fa87e4f); e = ii(e, f, g, h, load<u32>(q, 32), 6, 0x6fa87e4f);
  d = ii(d, a, b, c, load<u32>(p, 60), 10, 0xfe2ce6e0); h = ii(h, e, f, g, load<u32>(q, 60), 10, 0xfe2ce6e0);
  c = ii(c, d, a, b, load<u32>(p, 24), 15, 0xa3014314); g = ii(g, h, e, f, load<u32>(q, 24), 15, 0xa3014314);
  b = ii(b, c, d, a, load<u32>(p, 52), 21, 0x4e0811a1); f = ii(f, g, h, e, load<u32>(q, 52), 21, 0x4e0811a1);
  a = ii(a, b, c, d, load<u32>(p, 16), 6, 0xf7537e82); e = ii(e, f, g, h, load<u32>(q, 16), 6, 0xf7537e82);
  d = ii(d, a, b, c, load<u32>(p, 44), 10, 0xbd3af235); h = ii(h, e, f, g, load<u32>(q, 44), 10, 0xbd3af235);
  c = ii(c, d, a, b, load<u32>(p, 8), 15, 0x2ad7d2bb); g = ii(g, h, e, f, load<u32>(q, 8), 15, 0x2ad7d2bb);
  b = ii(b, c, d, a, load<u32>(p, 36), 21, 0xeb86d391); f = ii(f, g, h, e, load<u32>(q, 36), 21, 0xeb86d391);
  h0 += a;
  h1 += b;
  h2 += c;
  h3 += d;
  g0 += e;
  g1 += f;
  g2 += g;
  g3 += h;
}

/** Blocks MD5 hashes for a len-byte message: data, 0x80, padding and the 8-byte length. */
@inline function blockCount(len: usize): usize {
  return ((len + 8) >> 6) + 1;
}

/** Writes the padded tail of (p, len) into pad (one or two blocks); RFC §3.1-3.2. */
@inline function writeTail(pad: usize, p: usize, len: usize): void {
  const full = len & ~(<usize>63);
  const rest = len - full;
  memory.copy(pad, p + full, rest);
  store<u8>(pad + rest, 0x80);
  const end: usize = rest < 56 ? 64 : 128;
  memory.fill(pad + rest + 1, 0, end - 8 - rest - 1);
  store<u64>(pad + end - 8, (<u64>len) << 3);
}

/** MD5 of (p, lenP) into h0..h3 and of (q, lenQ) into g0..g3; same blockCount required. */
function md5Pair(p: usize, lenP: usize, q: usize, lenQ: usize): void {
  h0 = g0 = 0x67452301;
  h1 = g1 = 0xefcdab89;
  h2 = g2 = 0x98badcfe;
  h3 = g3 = 0x10325476;
  writeTail(PAD, p, lenP);
  writeTail(PAD2, q, lenQ);
  const fullP = lenP & ~(<usize>63);
  const fullQ = lenQ & ~(<usize>63);
  const end = blockCount(lenP) << 6;
  // Block k comes from the message while it has full blocks left, then from its padding.
  for (let off: usize = 0; off < end; off += 64) {
    compress2(off < fullP ? p + off : PAD + (off - fullP), off < fullQ ? q + off : PAD2 + (off - fullQ));
  }
}

/** MD5 of len bytes at p into the state h0..h3 (initial values from RFC §3.3). */
function md5Into(p: usize, len: usize): void {
  h0 = 0x67452301;
  h1 = 0xefcdab89;
  h2 = 0x98badcfe;
  h3 = 0x10325476;
  const full = len & ~(<usize>63);
  for (let off: usize = 0; off < full; off += 64) compress(p + off);
  // Tail: what is left, 0x80, zeros up to 56 mod 64, then the length in bits (u64 LE).
  writeTail(PAD, p, len);
  compress(PAD);
  if (len - full >= 56) compress(PAD + 64);
}

// Two lowercase hex digits per byte value, as little-endian u16s (first digit in the low byte):
// one load per byte instead of ten arithmetic operations (hex keys are the common output).
const HEX: usize = memory.data<u16>([
  12336, 12592, 12848, 13104, 13360, 13616, 13872, 14128, 14384, 14640, 24880, 25136, 25392, 25648, 25904, 26160,
  12337, 12593, 12849, 13105, 13361, 13617, 13873, 14129, 14385, 14641, 24881, 25137, 25393, 25649, 25905, 26161,
  12338, 12594, 12850, 13106, 13362, 13618, 13874, 14130, 14386, 14642, 24882, 25138, 25394, 25650, 25906, 26162,
  12339, 12595, 12851, 13107, 13363, 13619, 13875, 14131, 14387, 14643, 24883, 25139, 25395, 25651, 25907, 26163,
  12340, 12596, 12852, 13108, 13364, 13620, 13876, 14132, 14388, 14644, 24884, 25140, 25396, 25652, 25908, 26164,
  12341, 12597, 12853, 13109, 13365, 13621, 13877, 14133, 14389, 14645, 24885, 25141, 25397, 25653, 25909, 26165,
  12342, 12598, 12854, 13110, 13366, 13622, 13878, 14134, 14390, 14646, 24886, 25142, 25398, 25654, 25910, 26166,
  12343, 12599, 12855, 13111, 13367, 13623, 13879, 14135, 14391, 14647, 24887, 25143, 25399, 25655, 25911, 26167,
  12344, 12600, 12856, 13112, 13368, 13624, 13880, 14136, 14392, 14648, 24888, 25144, 25400, 25656, 25912, 26168,
  12345, 12601, 12857, 13113, 13369, 13625, 13881, 14137, 14393, 14649, 24889, 25145, 25401, 25657, 25913, 26169,
  12385, 12641, 12897, 13153, 13409, 13665, 13921, 14177, 14433, 14689, 24929, 25185, 25441, 25697, 25953, 26209,
  12386, 12642, 12898, 13154, 13410, 13666, 13922, 14178, 14434, 14690, 24930, 25186, 25442, 25698, 25954, 26210,
  12387, 12643, 12899, 13155, 13411, 13667, 13923, 14179, 14435, 14691, 24931, 25187, 25443, 25699, 25955, 26211,
  12388, 12644, 12900, 13156, 13412, 13668, 13924, 14180, 14436, 14692, 24932, 25188, 25444, 25700, 25956, 26212,
  12389, 12645, 12901, 13157, 13413, 13669, 13925, 14181, 14437, 14693, 24933, 25189, 25445, 25701, 25957, 26213,
  12390, 12646, 12902, 13158, 13414, 13670, 13926, 14182, 14438, 14694, 24934, 25190, 25446, 25702, 25958, 26214,
]);

@inline function hexPair(v: u32): u32 {
  return <u32>load<u16>(HEX + (<usize>v << 1));
}

@inline function storeHexWord(out: usize, w: u32): void {
  // A digest word's bytes go out low byte first (RFC §3.5), two hex digits per byte.
  store<u16>(out, <u16>hexPair(w & 0xff), 0);
  store<u16>(out, <u16>hexPair((w >> 8) & 0xff), 2);
  store<u16>(out, <u16>hexPair((w >> 16) & 0xff), 4);
  store<u16>(out, <u16>hexPair(w >> 24), 6);
}

/** Writes one digest (raw 16 bytes, or 32 hex characters) at out; returns the next out. */
@inline function emit(out: usize, hex: i32, w0: u32, w1: u32, w2: u32, w3: u32): usize {
  if (hex != 0) {
    storeHexWord(out, w0);
    storeHexWord(out + 8, w1);
    storeHexWord(out + 16, w2);
    storeHexWord(out + 24, w3);
    return out + 32;
  }
  store<u32>(out, w0, 0);
  store<u32>(out, w1, 4);
  store<u32>(out, w2, 8);
  store<u32>(out, w3, 12);
  return out + 16;
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
    if (i + 1 < count) {
      const off2 = load<u32>(table + (<usize>(i + 1) << 3));
      const len2 = load<u32>(table + (<usize>(i + 1) << 3), 4);
      if (<u64>off2 + <u64>len2 > <u64>dataLen) return ERR_TOKEN_INPUT;
      if (blockCount(len) == blockCount(len2)) {
        // Two inputs of equal block count (the common case for small task encodings).
        md5Pair(data + off, len, data + off2, len2);
        out = emit(out, hex, h0, h1, h2, h3);
        out = emit(out, hex, g0, g1, g2, g3);
        i++;
        continue;
      }
    }
    md5Into(data + off, len);
    out = emit(out, hex, h0, h1, h2, h3);
  }
  return count;
}
