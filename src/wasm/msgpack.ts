// Binding to the msgpack kernel (assembly/msgpack/index.ts): copies the input into the
// REGION_MSGPACK_IN region, lets Wasm validate it and flatten it into a tape in ONE call, copies
// the tape out, and builds the JS values from the tape and the caller's own bytes (strings and
// bins are read from the input on the JS side; only offsets cross the boundary).
//
// The tape is read in place, except with an `objectHook`: that is user code and may decode again
// on this same instance, which would overwrite the tape, so then it is copied out first.
//
// Encoding is NOT done in Wasm: the JS encoder writes straight into one Uint8Array, and a Wasm
// encoder would need the same JS walk over the value plus a copy out of Wasm memory
// (bench/micro/msgpack.bench.ts measures both backends; they share encodeJs).
//
// Must not: read process.env (the facade decides the backend), keep values between calls.
import { CoreHandle } from "./core.ts";
import type { CoreInstance } from "./core.ts";
import { errorFromStatus } from "../errors.ts";
import { ERR_BAD_ARGUMENT, REGION_MSGPACK_IN } from "../../assembly/status.ts";
import { decodeConfig, encodeJs, finishObject, Float64, objectToMap, readInt64, readKey, readUtf8, setOwn, stackExhausted } from "../protocol/msgpack-js.ts";
import type { DecodeConfig, DecodeOptions, EncodeOptions } from "../protocol/msgpack-js.ts";

// Tape tags: must equal the constants at the top of assembly/msgpack/index.ts (the contract
// test in test/protocol/msgpack-wasm.test.ts decodes one value of every tag).
const TAG_NIL = 0;
const TAG_FALSE = 1;
const TAG_TRUE = 2;
const TAG_UINT = 3;
const TAG_INT = 4;
const TAG_UINT64 = 5;
const TAG_INT64 = 6;
const TAG_FLOAT32 = 7;
const TAG_FLOAT64 = 8;
const TAG_STR_ASCII = 9;
const TAG_STR_UTF8 = 10;
const TAG_BIN = 11;
const TAG_ARRAY = 12;
const TAG_MAP = 13;

/** The kernel's ABI version this binding reads (msgpackVersion()). */
export const MSGPACK_ABI = 1;

type DecodeFn = (inPtr: number, inLen: number, maxDepth: number, maxStr: number, maxBin: number, maxArr: number, maxMap: number) => number;

/** Limits are u32 in the kernel; larger (or Infinity) means "no limit below 4 GiB", which any wasm32 input satisfies. */
function u32(n: number): number {
  return n >= 0xffffffff ? 0xffffffff : n <= 0 ? 0 : Math.floor(n);
}

/** Builds values from a tape; one object per decode call (re-entrant through objectHook). */
class TapeWalker {
  readonly tape: Int32Array;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly cfg: DecodeConfig;
  i = 0; // index of the next token's first word

  constructor(tape: Int32Array, start: number, bytes: Uint8Array, cfg: DecodeConfig) {
    this.tape = tape;
    this.i = start;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.cfg = cfg;
  }

  value(): unknown {
    const t = this.tape;
    const i = this.i;
    this.i = i + 3;
    const a = t[i + 1]!;
    switch (t[i]) {
      case TAG_STR_ASCII:
      case TAG_STR_UTF8:
        // already validated by the kernel
        return readUtf8(this.bytes, a, t[i + 2]!, true);
      case TAG_UINT:
        return a >>> 0;
      case TAG_INT:
        return a;
      case TAG_MAP:
        return this.map(a >>> 0);
      case TAG_ARRAY: {
        const n = a >>> 0;
        const out = new Array<unknown>(n);
        for (let k = 0; k < n; k++) out[k] = this.value();
        return out;
      }
      case TAG_NIL:
        return null;
      case TAG_FALSE:
        return false;
      case TAG_TRUE:
        return true;
      case TAG_BIN:
        return this.bytes.subarray(a, a + (t[i + 2]! >>> 0));
      case TAG_FLOAT64: {
        const f = this.view.getFloat64(a);
        return this.cfg.preserveFloats && Number.isInteger(f) ? new Float64(f) : f;
      }
      case TAG_FLOAT32:
        return this.view.getFloat32(a);
      case TAG_UINT64:
        return readInt64(this.view, a, false);
      case TAG_INT64:
        return readInt64(this.view, a, true);
      default:
        throw errorFromStatus(ERR_BAD_ARGUMENT, `unknown msgpack tape tag ${t[i]} (kernel/binding mismatch)`);
    }
  }

  map(n: number): unknown {
    const obj: Record<string, unknown> = {};
    let firstKey: string | undefined;
    const t = this.tape;
    for (let k = 0; k < n; k++) {
      const i = this.i;
      const tag = t[i];
      let key: unknown;
      if (tag === TAG_STR_ASCII || tag === TAG_STR_UTF8) {
        // field names repeat across messages: the key cache returns the same string
        key = readKey(this.bytes, t[i + 1]!, t[i + 2]!, true);
        this.i = i + 3;
      } else {
        key = this.value();
      }
      if (typeof key !== "string") {
        // strict_map_key=False: int/tuple/bytes keys make the whole map a Map
        const m = objectToMap(obj);
        m.set(key, this.value());
        for (let r = k + 1; r < n; r++) {
          const kk = this.value();
          m.set(kk, this.value());
        }
        return m;
      }
      if (k === 0) firstKey = key;
      setOwn(obj, key, this.value());
    }
    return finishObject(obj, firstKey, this.cfg.objectHook);
  }
}

/** The Wasm backend; one CoreHandle (one instance) per codec, as every facade does. */
export class WasmMsgpack {
  readonly #handle = new CoreHandle();
  // Cached per instance (a trap rebuilds the instance, so the cache is keyed by it): the input
  // region's pointer and capacity, and an Int32Array over the whole memory for reading the tape
  // in place. Saves two boundary calls and two typed-array allocations per message.
  #core: CoreInstance | undefined;
  #inPtr = 0;
  #inCap = 0;
  #i32: Int32Array = new Int32Array(0);

  /**
   * Runs the kernel over `bytes`; returns the tape and the index of its first word. The tape is
   * a view into Wasm memory unless `copy` (objectHook may re-enter and overwrite it).
   */
  #tape(bytes: Uint8Array, cfg: DecodeConfig, copy: boolean): [Int32Array, number] {
    return this.#handle.run((core) => {
      const len = bytes.length;
      if (core !== this.#core || len > this.#inCap) {
        this.#core = core;
        this.#inPtr = core.region(REGION_MSGPACK_IN, len === 0 ? 1 : len);
        this.#inCap = (core.exports.regionCapacity(REGION_MSGPACK_IN) as number) >>> 0;
      }
      core.u8().set(bytes, this.#inPtr);
      const decode = core.exports.msgpackDecode as DecodeFn;
      const n = decode(this.#inPtr, len, u32(cfg.maxDepth), u32(cfg.maxStrBytes), u32(cfg.maxBinBytes), u32(cfg.maxArrayLength), u32(cfg.maxMapLength));
      if (n < 0) throw errorFromStatus(n, `at byte ${(core.exports.msgpackErrorPos as () => number)() >>> 0}`);
      const word = ((core.exports.msgpackTapePtr as () => number)() >>> 0) >>> 2; // tape is 4-byte aligned
      const u8 = core.u8();
      if (this.#i32.buffer !== u8.buffer) this.#i32 = new Int32Array(u8.buffer);
      if (copy) return [this.#i32.slice(word, word + n * 3), 0];
      return [this.#i32, word];
    });
  }

  decode(bytes: Uint8Array, options?: DecodeOptions): unknown {
    const cfg = decodeConfig(options);
    const [tape, start] = this.#tape(bytes, cfg, cfg.objectHook !== undefined);
    const walker = new TapeWalker(tape, start, bytes, cfg);
    try {
      return walker.value();
    } catch (err) {
      return stackExhausted(err);
    }
  }

  encode(value: unknown, options?: EncodeOptions): Uint8Array {
    return encodeJs(value, options);
  }

  /** The kernel's ABI version (for the contract test). */
  abiVersion(): number {
    return this.#handle.run((core) => (core.exports.msgpackVersion as () => number)());
  }
}
