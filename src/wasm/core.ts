// Loading and instantiating the core module (build/core.wasm). Each facade (codec, frames,
// tokens, store) owns its own instance of the one shared WebAssembly.Module, so a trap in the
// msgpack decoder cannot lose the store's index (DESIGN.md "Where the Wasm goes"; STYLE.md §5
// "treat a trap as a bug: drop the instance and rebuild").
//
// Views over memory.buffer are detached when memory grows; `CoreInstance.u8()` re-creates them
// when the buffer identity changes (cf. undici client-h1.js `currentBuffer`).
import { WasmError } from "../errors.ts";
import { envFlag, readCoreWasmBytes } from "../runtime/wasm-source.ts";

/** Integer-only exports of build/core.wasm. Kernels add theirs; all return i32/u32 (pointers are u32). */
export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  region(id: number, len: number): number;
  regionCapacity(id: number): number;
  [name: string]: unknown;
}

let coreModule: WebAssembly.Module | undefined;

/** Use this precompiled module (browsers, workerd) instead of reading build/core.wasm. */
export function setCoreModule(module: WebAssembly.Module): void {
  coreModule = module;
}

/** The shared module, compiled once per process (DASK_WASM_DEBUG=1 loads the debug build). */
export function getCoreModule(): WebAssembly.Module {
  if (coreModule) return coreModule;
  const bytes = readCoreWasmBytes(envFlag("DASK_WASM_DEBUG") === "1");
  if (!bytes) {
    throw new WasmError("DASK_ERR_WASM_MISSING", "no core Wasm module: call setCoreModule(module) on this platform");
  }
  coreModule = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  return coreModule;
}

function decodeAbortMessage(memory: WebAssembly.Memory, ptr: number): string {
  // AS strings: u32 byte length at ptr-4, UTF-16LE payload.
  if (!ptr) return "";
  const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0]!;
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, len >>> 1));
}

/** One instance of the core module with helpers for its memory. */
export class CoreInstance {
  readonly exports: CoreExports;
  #buffer: ArrayBuffer;
  #u8: Uint8Array;
  #dv: DataView;

  constructor(module: WebAssembly.Module = getCoreModule()) {
    let memory: WebAssembly.Memory | undefined;
    const imports = {
      env: {
        abort(msg: number, file: number, line: number, column: number): never {
          const text = memory ? `${decodeAbortMessage(memory, msg)} at ${decodeAbortMessage(memory, file)}:${line}:${column}` : "";
          throw new WasmError("DASK_ERR_WASM_ABORT", `the Wasm core aborted: ${text}`);
        },
        trace(): void {},
        seed(): number {
          return 0; // kernels are deterministic; nothing may depend on this
        },
      },
    };
    const instance = new WebAssembly.Instance(module, imports);
    this.exports = instance.exports as unknown as CoreExports;
    memory = this.exports.memory;
    this.#buffer = memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#dv = new DataView(this.#buffer);
  }

  #refresh(): void {
    const buf = this.exports.memory.buffer;
    if (buf !== this.#buffer) {
      this.#buffer = buf;
      this.#u8 = new Uint8Array(buf);
      this.#dv = new DataView(buf);
    }
  }

  /** A byte view over the whole memory, valid until the next call that may grow memory. */
  u8(): Uint8Array {
    this.#refresh();
    return this.#u8;
  }

  dv(): DataView {
    this.#refresh();
    return this.#dv;
  }

  /** Pointer to region `id` with room for `len` bytes; throws a coded error if it cannot. */
  region(id: number, len: number): number {
    const ptr = this.exports.region(id, len) >>> 0;
    if (ptr === 0) throw new WasmError("DASK_ERR_WASM_OOM", `the Wasm core cannot hold ${len} bytes in region ${id}`);
    return ptr;
  }
}

/**
 * Runs `fn` against a lazily created instance, and drops the instance if it traps so the next
 * call gets a fresh one. The trap becomes a coded WasmError; the caller decides what failed
 * (the connection, the task) and nothing else is affected.
 */
export class CoreHandle {
  #instance: CoreInstance | undefined;
  #traps = 0;

  get instance(): CoreInstance {
    return (this.#instance ??= new CoreInstance());
  }

  /** How many times this handle's instance trapped and was rebuilt. */
  get traps(): number {
    return this.#traps;
  }

  run<T>(fn: (core: CoreInstance) => T): T {
    const core = this.instance;
    try {
      return fn(core);
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError || (err instanceof WasmError && err.code === "DASK_ERR_WASM_ABORT")) {
        this.#instance = undefined;
        this.#traps++;
        const oom = err instanceof WebAssembly.RuntimeError && /unreachable|memory/i.test(err.message);
        throw new WasmError(oom ? "DASK_ERR_WASM_TRAP" : "DASK_ERR_WASM_ABORT", `the Wasm core trapped (${(err as Error).message}); the instance was rebuilt`, { cause: err });
      }
      throw err;
    }
  }
}
