// Every error dask-wasm raises: a base `DaskError` with a stable `code`, one subclass per family.
// Branded with Symbol.for so `instanceof` survives two copies of the package in one process
// (cf. undici lib/core/errors.js). Codes are listed in README.md "Error codes".
// Kernel status codes (assembly/status.ts) become errors only in `errorFromStatus` below.
import * as S from "../assembly/status.ts";

const BRAND = Symbol.for("dask-wasm.error");

export class DaskError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DaskError";
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === DaskError) {
      return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** Bad bytes on a connection: framing, msgpack, WebSocket. The connection is closed; nothing else is. */
export class ProtocolError extends DaskError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ProtocolError";
  }
}

/** A pickle the reader refuses (unknown opcode, global not on the allow-list, truncated). */
export class PickleError extends DaskError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "PickleError";
  }
}

/** The Wasm core trapped or ran out of memory; the instance is dropped and rebuilt. */
export class WasmError extends DaskError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "WasmError";
  }
}

/** The worker's byte store: missing keys, spill failures. */
export class StoreError extends DaskError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "StoreError";
  }
}

/** Invalid options, validated once and named by their path ("options.maxFrameBytes must be ..."). */
export class ConfigError extends DaskError {
  constructor(message: string) {
    super("DASK_ERR_CONFIG", message);
    this.name = "ConfigError";
  }
}

const STATUS_TABLE: Record<number, [string, string, typeof DaskError]> = {
  [S.ERR_OUT_OF_MEMORY]: ["DASK_ERR_WASM_OOM", "the Wasm core could not grow its memory", WasmError],
  [S.ERR_BAD_ARGUMENT]: ["DASK_ERR_WASM_ARGUMENT", "a pointer or length outside the Wasm core's regions", WasmError],
  [S.ERR_FRAME_TOO_LARGE]: ["DASK_ERR_FRAME_TOO_LARGE", "a frame is longer than maxFrameBytes", ProtocolError],
  [S.ERR_MESSAGE_TOO_LARGE]: ["DASK_ERR_MESSAGE_TOO_LARGE", "a message is longer than maxMessageBytes", ProtocolError],
  [S.ERR_TOO_MANY_FRAMES]: ["DASK_ERR_TOO_MANY_FRAMES", "a message has more frames than maxFrames", ProtocolError],
  [S.ERR_FRAME_BAD_PRELUDE]: ["DASK_ERR_FRAME_BAD_PRELUDE", "frame lengths do not add up to the message length", ProtocolError],
  [S.ERR_FRAME_WS_COUNT]: ["DASK_ERR_FRAME_WS_COUNT", "the WebSocket frame-count message is not one 8-byte u64", ProtocolError],
  [S.ERR_MSGPACK_INVALID]: ["DASK_ERR_MSGPACK_INVALID", "malformed msgpack", ProtocolError],
  [S.ERR_MSGPACK_TOO_DEEP]: ["DASK_ERR_MSGPACK_TOO_DEEP", "msgpack nesting deeper than maxDepth", ProtocolError],
  [S.ERR_MSGPACK_TOO_LARGE]: ["DASK_ERR_MSGPACK_TOO_LARGE", "a msgpack str/bin/array/map is longer than its limit", ProtocolError],
  [S.ERR_MSGPACK_EXT]: ["DASK_ERR_MSGPACK_EXT", "msgpack ext types are not part of the dask protocol", ProtocolError],
  [S.ERR_MSGPACK_TRAILING]: ["DASK_ERR_MSGPACK_TRAILING", "bytes left after a complete msgpack value", ProtocolError],
  [S.ERR_MSGPACK_UTF8]: ["DASK_ERR_MSGPACK_UTF8", "a msgpack str is not valid UTF-8", ProtocolError],
  [S.ERR_MSGPACK_UNSUPPORTED]: ["DASK_ERR_MSGPACK_UNSUPPORTED", "a value msgpack cannot represent", ProtocolError],
  [S.ERR_MSGPACK_TRUNCATED]: ["DASK_ERR_MSGPACK_TRUNCATED", "msgpack input ends inside a value", ProtocolError],
  [S.ERR_MSGPACK_STR_TOO_LARGE]: ["DASK_ERR_MSGPACK_STR_TOO_LARGE", "a msgpack str is longer than maxStrBytes", ProtocolError],
  [S.ERR_MSGPACK_BIN_TOO_LARGE]: ["DASK_ERR_MSGPACK_BIN_TOO_LARGE", "a msgpack bin is longer than maxBinBytes", ProtocolError],
  [S.ERR_MSGPACK_ARRAY_TOO_LONG]: ["DASK_ERR_MSGPACK_ARRAY_TOO_LONG", "a msgpack array has more than maxArrayLength items", ProtocolError],
  [S.ERR_MSGPACK_MAP_TOO_LONG]: ["DASK_ERR_MSGPACK_MAP_TOO_LONG", "a msgpack map has more than maxMapLength entries", ProtocolError],
  [S.ERR_TOKEN_INPUT]: ["DASK_ERR_TOKEN_INPUT", "token batch offsets are inconsistent", WasmError],
  [S.ERR_STORE_MISSING]: ["DASK_ERR_STORE_MISSING", "key not in the store", StoreError],
  [S.ERR_STORE_INDEX_FULL]: ["DASK_ERR_STORE_INDEX_FULL", "the store index cannot grow", StoreError],
  [S.ERR_STORE_DUPLICATE]: ["DASK_ERR_STORE_DUPLICATE", "key already in the store", StoreError],
  [S.ERR_STORE_SPILL_FAILED]: ["DASK_ERR_SPILL_FAILED", "the spill hook failed; the value stays where it was", StoreError],
};

/** The one place where a kernel's negative status becomes an error (cf. undici createError). */
export function errorFromStatus(status: number, detail?: string): DaskError {
  const entry = STATUS_TABLE[status];
  if (!entry) return new WasmError("DASK_ERR_WASM_STATUS", `unknown status ${status} from the Wasm core${detail ? `: ${detail}` : ""}`);
  const [code, text, Cls] = entry;
  return new Cls(code, detail ? `${text}: ${detail}` : text);
}

/** All codes with their one-line meaning, for README generation and tests. */
export function statusCodes(): Array<{ status: number; code: string; text: string }> {
  return Object.entries(STATUS_TABLE).map(([status, [code, text]]) => ({ status: Number(status), code, text }));
}
