// lz4 block codec in dask's format: 4-byte little-endian uncompressed size, then one raw LZ4
// block (python3-lz4 `lz4.block.compress(data)` default mode; DASK-PROTOCOL-2022.12.md §3.1).
//
// Role: a minimal loader for lz4-wasm's `.wasm` (lz4_flex compiled by wasm-bindgen). Its shipped
// JS glue does `import * as wasm from './lz4_wasm_bg.wasm'`, which neither Node nor browsers
// load as is (DESIGN.md "Where the Wasm goes"), so we instantiate the module ourselves and repeat
// what the glue does: malloc the input in the module's memory, call `compress(retptr, ptr, len)`
// / `decompress(retptr, ptr, len)` with a 16-byte return slot carved from the shadow stack, read
// `(ptr, len[, errIdx, isErr])` from it, copy the output out and free it. lz4_flex's
// `compress_prepend_size` / `decompress_size_prepended` are exactly dask's format.
//
// Must not: trust the size prefix (a prefix claiming 4 GiB is a coded error before anything is
// allocated: lz4_flex would `Vec::with_capacity` it and trap), keep views across calls that may
// grow memory, or do IO other than reading the module file once on Node (browsers and workerd
// pass a precompiled module to `setLz4Module`, as for the core module).
//
// A trap (bad input lz4_flex did not catch, out of memory) drops the instance; the next call
// instantiates a fresh one from the same compiled module (STYLE.md §5).
import { ProtocolError, WasmError } from "../errors.ts";

/** Default ceiling for one decompressed frame: dask's own frame limit is 2^31 (maybe_compress). */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 0x7fff_ffff;

/**
 * Wasm memory never shrinks, and one 64 MiB shard grows this instance's memory past 128 MiB
 * (input + output). Above this size the instance is dropped after the call and the next call
 * starts from a fresh one (instantiating the already compiled 25 kB module is cheap next to
 * copying 32 MiB), so a worker's RSS returns to idle after big transfers (DESIGN.md targets).
 */
const RESET_ABOVE_BYTES = 32 * 1024 * 1024;

interface Lz4Exports {
  readonly memory: WebAssembly.Memory;
  compress(retptr: number, ptr: number, len: number): void;
  decompress(retptr: number, ptr: number, len: number): void;
  __wbindgen_add_to_stack_pointer(delta: number): number;
  __wbindgen_malloc(len: number): number;
  __wbindgen_free(ptr: number, len: number): void;
}

let lz4Module: WebAssembly.Module | undefined;
let instance: Lz4Instance | undefined;
let traps = 0;

/** Use this precompiled lz4-wasm module (browsers, workerd) instead of reading it from node_modules. */
export function setLz4Module(module: WebAssembly.Module): void {
  lz4Module = module;
  instance = undefined;
}

type FsLike = { readFileSync(path: URL): Uint8Array };

function loadModule(): WebAssembly.Module {
  if (lz4Module) return lz4Module;
  // Same trick as src/runtime/wasm-source.ts: getBuiltinModule keeps `node:fs` out of bundles.
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.("node:fs") as FsLike | undefined;
  if (!fs) throw new WasmError("DASK_ERR_LZ4_MISSING", "no lz4 Wasm module: call setLz4Module(module) on this platform");
  let url: URL;
  try {
    // The package has no "exports" map, so its files resolve as subpaths wherever it is hoisted.
    url = new URL(import.meta.resolve("lz4-wasm/lz4_wasm_bg.wasm"));
  } catch (err) {
    throw new WasmError("DASK_ERR_LZ4_MISSING", "cannot resolve lz4-wasm/lz4_wasm_bg.wasm", { cause: err });
  }
  lz4Module = new WebAssembly.Module(fs.readFileSync(url) as Uint8Array<ArrayBuffer>);
  return lz4Module;
}

class Lz4Instance {
  readonly ex: Lz4Exports;
  /** The error strings lz4_flex hands back through `__wbindgen_string_new`, by handle. */
  readonly strings = new Map<number, string>();
  #next = 1;

  constructor(module: WebAssembly.Module) {
    const imports = {
      "./lz4_wasm_bg.js": {
        // Called only on the error path of `decompress`, to build the thrown JS string; the
        // handle comes back in the return slot and we look it up there (the glue's heap).
        __wbindgen_string_new: (ptr: number, len: number): number => {
          const text = new TextDecoder().decode(new Uint8Array(this.ex.memory.buffer, ptr >>> 0, len >>> 0));
          const id = this.#next++;
          this.strings.set(id, text);
          return id;
        },
      },
    };
    this.ex = new WebAssembly.Instance(module, imports).exports as unknown as Lz4Exports;
  }

  /**
   * Calls `fn(retptr, ptr, len)` with `input` copied in; returns the output bytes (copied out,
   * module memory freed) or throws the decompressor's error text as a coded ProtocolError.
   */
  call(fn: "compress" | "decompress", input: Uint8Array): Uint8Array {
    const ex = this.ex;
    const retptr = ex.__wbindgen_add_to_stack_pointer(-16);
    try {
      // wasm-bindgen `&[u8]` argument: JS allocates, the Rust shim takes ownership and frees it.
      const ptr = ex.__wbindgen_malloc(input.length) >>> 0;
      new Uint8Array(ex.memory.buffer).set(input, ptr);
      ex[fn](retptr, ptr, input.length);
      // Views are taken only now: the call may have grown (and detached) memory.
      const slot = new Int32Array(ex.memory.buffer, retptr, 4);
      const outPtr = slot[0]! >>> 0;
      const outLen = slot[1]! >>> 0;
      if (fn === "decompress" && slot[3] !== 0) {
        const text = this.strings.get(slot[2]!) ?? "unknown lz4 error";
        this.strings.delete(slot[2]!);
        throw new ProtocolError("DASK_ERR_LZ4_CORRUPT", `lz4 block does not decompress: ${text}`);
      }
      const out = new Uint8Array(ex.memory.buffer, outPtr, outLen).slice();
      ex.__wbindgen_free(outPtr, outLen);
      return out;
    } finally {
      ex.__wbindgen_add_to_stack_pointer(16);
    }
  }
}

function run(fn: "compress" | "decompress", input: Uint8Array): Uint8Array {
  const inst = (instance ??= new Lz4Instance(loadModule()));
  try {
    const out = inst.call(fn, input);
    if (inst.ex.memory.buffer.byteLength > RESET_ABOVE_BYTES && instance === inst) instance = undefined;
    return out;
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      // lz4_flex panics become `unreachable`; memory may be half-updated, so never reuse it.
      instance = undefined;
      traps++;
      throw new WasmError("DASK_ERR_LZ4_TRAP", `lz4 Wasm trapped (${err.message}); the instance was rebuilt`, { cause: err });
    }
    throw err;
  }
}

/** Bytes of Wasm memory the current lz4 instance holds (0 when none is live); for diagnostics. */
export function lz4MemoryBytes(): number {
  return instance ? instance.ex.memory.buffer.byteLength : 0;
}

/** How many times the lz4 instance trapped and was rebuilt (for tests and diagnostics). */
export function lz4Traps(): number {
  return traps;
}

/** `data` -> u32 LE length + raw LZ4 block (what `lz4.block.compress(data)` produces). */
export function compressBlock(data: Uint8Array): Uint8Array {
  if (data.length > DEFAULT_MAX_DECOMPRESSED_BYTES) {
    throw new ProtocolError("DASK_ERR_LZ4_TOO_LARGE", `cannot lz4-compress ${data.length} bytes: the size prefix is limited to 2^31-1`);
  }
  return run("compress", data);
}

/** The uncompressed size a dask lz4 frame claims, or -1 if it is too short to have a prefix. */
export function claimedSize(frame: Uint8Array): number {
  if (frame.length < 4) return -1;
  return (frame[0]! | (frame[1]! << 8) | (frame[2]! << 16) | (frame[3]! << 24)) >>> 0;
}

/**
 * Inverse of compressBlock. The size prefix is checked against `maxDecompressedBytes` before the
 * module allocates anything, and the output length against the prefix after, so a lying prefix
 * is a coded ProtocolError either way.
 */
export function decompressBlock(frame: Uint8Array, options: { maxDecompressedBytes?: number } = {}): Uint8Array {
  const max = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const size = claimedSize(frame);
  if (size < 0) throw new ProtocolError("DASK_ERR_LZ4_CORRUPT", `lz4 frame of ${frame.length} bytes has no 4-byte size prefix`);
  if (size > max) {
    throw new ProtocolError("DASK_ERR_LZ4_TOO_LARGE", `lz4 frame claims ${size} uncompressed bytes, above maxDecompressedBytes ${max}`);
  }
  // An LZ4 block expands at most ~255× (one 0xff length byte per 255 output bytes); a prefix
  // claiming more than that is a lie we can refuse without allocating the claimed size.
  if (size > (frame.length - 4) * 255 + 16) {
    throw new ProtocolError("DASK_ERR_LZ4_CORRUPT", `lz4 frame of ${frame.length} bytes cannot expand to the ${size} bytes it claims`);
  }
  const out = run("decompress", frame);
  if (out.length !== size) {
    throw new ProtocolError("DASK_ERR_LZ4_CORRUPT", `lz4 frame claims ${size} bytes but decompressed to ${out.length}`);
  }
  return out;
}
