// Binding for the token kernel (assembly/token.ts): lays inputs out in REGION_TOKEN_IN as the
// kernel's table + data, makes ONE md5Batch call per batch, and reads digests back from
// REGION_TOKEN_OUT. Role: move bytes across the boundary and map statuses to coded errors.
// It must not know about the canonical encoding (src/tokens.ts) and keeps no state besides
// its own CoreHandle (one instance per facade, src/wasm/core.ts).
import { CoreHandle, type CoreInstance } from "./core.ts";
import { DaskError, WasmError, errorFromStatus } from "../errors.ts";
import { REGION_TOKEN_IN, REGION_TOKEN_OUT } from "../../assembly/status.ts";

/** The ABI of md5Batch this binding writes (assembly/token.ts `tokenVersion`). */
const TOKEN_ABI = 1;

/** Kernel inputs are u32 offsets/lengths and the region allocator refuses >= 2 GiB. */
const MAX_BATCH_BYTES = 0x7fff_0000;

/**
 * Inputs per Wasm call are cut into chunks of about this many bytes, so the module's memory
 * (which never shrinks, runtime stub) stays near this size plus the largest single input,
 * whatever the batch. 4 MiB is ~90,000 small task encodings: typical batches still make one call.
 */
export const CHUNK_BYTES = 4 << 20;

// The table is u32 little-endian; a Uint32Array view is only that on a little-endian host.
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface TokenExports {
  md5Batch(count: number, dataLen: number, hex: number): number;
  tokenVersion(): number;
}

// windows-1252 per the Encoding spec, identical to ASCII for the hex digits we decode.
const LATIN1 = new TextDecoder("latin1");

export class TokenCore {
  #handle = new CoreHandle();
  #checked = false;

  #exports(core: CoreInstance): TokenExports {
    const ex = core.exports as unknown as Partial<TokenExports>;
    if (!this.#checked) {
      if (typeof ex.md5Batch !== "function" || typeof ex.tokenVersion !== "function" || ex.tokenVersion() !== TOKEN_ABI) {
        throw new WasmError("DASK_ERR_WASM_MISSING", `the core Wasm module has no md5Batch with token ABI ${TOKEN_ABI}; rebuild it (npm run build:wasm)`);
      }
      this.#checked = true;
    }
    return ex as TokenExports;
  }

  /**
   * Writes the table for `count` spans (span i = data[starts[i] .. starts[i] + lens[i]) via
   * `fill`) and the data, runs md5Batch, and hands the output bytes (valid only inside `use`)
   * to `use`. Everything happens inside one CoreHandle.run so a trap rebuilds the instance.
   */
  #run<T>(count: number, dataLen: number, hex: boolean, fill: (u8: Uint8Array, dv: DataView, table: number, data: number) => void, use: (out: Uint8Array) => T): T {
    if (dataLen > MAX_BATCH_BYTES || count * 8 + dataLen > MAX_BATCH_BYTES) {
      throw new WasmError("DASK_ERR_TOKEN_INPUT", `a token batch of ${dataLen} bytes is above the ${MAX_BATCH_BYTES}-byte limit; split it`);
    }
    return this.#handle.run((core) => {
      const ex = this.#exports(core);
      const outLen = count * (hex ? 32 : 16);
      // Allocate both regions first: a second region() may grow memory, so views come after.
      const table = core.region(REGION_TOKEN_IN, Math.max(1, count * 8 + dataLen));
      const out = core.region(REGION_TOKEN_OUT, Math.max(1, outLen));
      fill(core.u8(), core.dv(), table, table + count * 8);
      const status = ex.md5Batch(count, dataLen, hex ? 1 : 0);
      if (status < 0) throw errorFromStatus(status, `md5Batch(${count} inputs, ${dataLen} bytes)`);
      return use(core.u8().subarray(out, out + outLen));
    });
  }

  /**
   * MD5 of each input; returns 16 * inputs.length bytes (digest i at 16 * i). One Wasm call per
   * CHUNK_BYTES of input (so one call for any batch of small inputs). Inputs are copied into
   * module memory; the caller's arrays are not retained.
   */
  digestMany(inputs: readonly Uint8Array[]): Uint8Array {
    const n = inputs.length;
    const result = new Uint8Array(16 * n);
    let first = 0;
    while (first < n) {
      // Extend the chunk while it stays under CHUNK_BYTES (a single larger input goes alone).
      let total = 0;
      let last = first;
      for (; last < n; last++) {
        const b = inputs[last];
        if (!(b instanceof Uint8Array)) throw new DaskError("DASK_ERR_TOKEN_INPUT", `md5 input ${last} is not a Uint8Array`);
        if (last > first && total + b.byteLength > CHUNK_BYTES) break;
        total += b.byteLength;
      }
      const from = first;
      this.#run(last - from, total, false, (u8, dv, table, data) => {
        let off = 0;
        for (let i = from; i < last; i++) {
          const b = inputs[i]!;
          const len = b.byteLength;
          dv.setUint32(table + (i - from) * 8, off, true);
          dv.setUint32(table + (i - from) * 8 + 4, len, true);
          u8.set(b, data + off);
          off += len;
        }
      }, (out) => result.set(out, 16 * from));
      first = last;
    }
    return result;
  }

  /**
   * MD5 of `count` back-to-back spans of `data`: span i ends at ends[i] and starts where span
   * i - 1 ended (span 0 at 0). Returns the 32 * count lowercase hex characters as one string
   * (digest i at 32 * i). Per chunk of up to CHUNK_BYTES: one copy into module memory, one
   * Wasm call, one decode.
   */
  hexSpans(data: Uint8Array, ends: ArrayLike<number>, count: number): string {
    let out = "";
    let first = 0;
    while (first < count) {
      const base = first === 0 ? 0 : ends[first - 1]!;
      let last = first + 1;
      while (last < count && ends[last]! - base <= CHUNK_BYTES) last++;
      out += this.#hexChunk(data, ends, first, last, base);
      first = last;
    }
    return out;
  }

  #hexChunk(data: Uint8Array, ends: ArrayLike<number>, first: number, last: number, base: number): string {
    const count = last - first;
    const dataLen = ends[last - 1]! - base;
    return this.#run(count, dataLen, true, (u8, dv, table, dataPtr) => {
      let start = 0;
      if (HOST_LE && (table & 3) === 0) {
        // Fast path: write (offset, length) pairs through a u32 view (little-endian host).
        const t = new Uint32Array(u8.buffer, table, count * 2);
        for (let i = 0; i < count; i++) {
          const end = ends[first + i]! - base;
          t[2 * i] = start;
          t[2 * i + 1] = end - start;
          start = end;
        }
      } else {
        for (let i = 0; i < count; i++) {
          const end = ends[first + i]! - base;
          dv.setUint32(table + i * 8, start, true);
          dv.setUint32(table + i * 8 + 4, end - start, true);
          start = end;
        }
      }
      u8.set(data.subarray(base, base + dataLen), dataPtr);
    }, (out) => LATIN1.decode(out));
  }

  /** Current size of this facade's Wasm memory in bytes (tests check it stays bounded). */
  get memoryBytes(): number {
    return this.#handle.instance.exports.memory.buffer.byteLength;
  }

  /** Times this facade's instance trapped and was rebuilt (for tests and diagnostics). */
  get traps(): number {
    return this.#handle.traps;
  }
}

// ---------------------------------------------------------------------------------------------
// TS twin (DASK_WASM_BACKEND=js): the same interface in plain TypeScript, for platforms where
// the core module is not available and as the benchmark's TS column (STYLE.md §7). RFC 1321
// in its table-driven form; constants written out (Math.sin is not required to be correctly
// rounded, so computing them at load time could differ between engines).

const K = new Int32Array([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);
const SHIFT = new Uint8Array([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);
// Message word used by step i: i, 5i + 1, 3i + 5, 7i (mod 16) in rounds 1-4 (RFC §3.4).
const WORD = new Uint8Array(64).map((_, i) => (i < 16 ? i : i < 32 ? 5 * i + 1 : i < 48 ? 3 * i + 5 : 7 * i) & 15);
const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export class TokenJs {
  #x = new Int32Array(16);
  #tail = new Uint8Array(128);
  #state = new Int32Array(4);

  /** One 64-byte block of `b` at `p` into #state. */
  #compress(b: Uint8Array, p: number): void {
    const x = this.#x;
    for (let j = 0; j < 16; j++, p += 4) x[j] = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
    const st = this.#state;
    let a = st[0]!, bb = st[1]!, c = st[2]!, d = st[3]!;
    for (let i = 0; i < 64; i++) {
      const r = i >> 4;
      const f = r === 0 ? d ^ (bb & (c ^ d)) : r === 1 ? c ^ (d & (bb ^ c)) : r === 2 ? bb ^ c ^ d : c ^ (bb | ~d);
      const s = SHIFT[(r << 2) | (i & 3)]!;
      const t = (a + f + K[i]! + x[WORD[i]!]!) | 0;
      a = d;
      d = c;
      c = bb;
      bb = (bb + ((t << s) | (t >>> (32 - s)))) | 0;
    }
    st[0] = (st[0]! + a) | 0;
    st[1] = (st[1]! + bb) | 0;
    st[2] = (st[2]! + c) | 0;
    st[3] = (st[3]! + d) | 0;
  }

  /** MD5 of data[off, off + len) into #state (RFC §3.1-3.3). */
  #md5(data: Uint8Array, off: number, len: number): void {
    const st = this.#state;
    st[0] = 0x67452301;
    st[1] = 0xefcdab89 | 0;
    st[2] = 0x98badcfe | 0;
    st[3] = 0x10325476;
    const full = len - (len & 63);
    for (let p = 0; p < full; p += 64) this.#compress(data, off + p);
    const rest = len - full;
    const tail = this.#tail;
    tail.fill(0);
    tail.set(data.subarray(off + full, off + len));
    tail[rest] = 0x80;
    const end = rest < 56 ? 64 : 128;
    // Length in bits, u64 little-endian; lengths stay below 2^53 so the split is exact.
    const bits = len * 8;
    const lo = bits % 0x1_0000_0000;
    const hi = Math.floor(bits / 0x1_0000_0000);
    for (let k = 0; k < 4; k++) {
      tail[end - 8 + k] = (lo >>> (8 * k)) & 0xff;
      tail[end - 4 + k] = (hi >>> (8 * k)) & 0xff;
    }
    this.#compress(tail, 0);
    if (end === 128) this.#compress(tail, 64);
  }

  digestMany(inputs: readonly Uint8Array[]): Uint8Array {
    const out = new Uint8Array(16 * inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      const b = inputs[i];
      if (!(b instanceof Uint8Array)) throw new DaskError("DASK_ERR_TOKEN_INPUT", `md5 input ${i} is not a Uint8Array`);
      this.#md5(b, 0, b.byteLength);
      for (let w = 0; w < 4; w++) {
        const v = this.#state[w]!;
        for (let k = 0; k < 4; k++) out[16 * i + 4 * w + k] = (v >>> (8 * k)) & 0xff;
      }
    }
    return out;
  }

  hexSpans(data: Uint8Array, ends: ArrayLike<number>, count: number): string {
    let out = "";
    let start = 0;
    for (let i = 0; i < count; i++) {
      const end = ends[i]!;
      this.#md5(data, start, end - start);
      for (let w = 0; w < 4; w++) {
        const v = this.#state[w]!;
        out += HEX_PAIRS[v & 0xff]! + HEX_PAIRS[(v >>> 8) & 0xff]! + HEX_PAIRS[(v >>> 16) & 0xff]! + HEX_PAIRS[v >>> 24]!;
      }
      start = end;
    }
    return out;
  }
}
