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
