// Binding for the Wasm prelude kernel (assembly/frame.ts `framePreludeParse`). Owns its own
// CoreHandle (one instance for all frame readers of the process), so a trap here rebuilds only
// this instance. Does no validation of its own: every check lives in the kernel, and
// src/protocol/frames-js.ts is its TS twin with the same PreludeParser shape.
//
// Crossing cost: the prefix is copied into REGION_FRAME_IN and the lengths come back as f64 in
// REGION_FRAME_OUT, one call per attempt. Region pointers are cached on this side because only
// this binding calls `region()` on its instance, and they change only when it asks for more room.
import * as S from "../../assembly/status.ts";
import { CoreHandle, type CoreInstance } from "./core.ts";
import type { FrameLimits, PreludeResult } from "../protocol/frames-js.ts";

type PreludeExport = (inPtr: number, inLen: number, outPtr: number, maxFrameBytes: number, maxMessageBytes: number, maxFrames: number) => number;

/** Prelude parser backed by the Wasm core; call `parse` like `parsePreludeJs`. */
export class WasmPreludeParser {
  #handle = new CoreHandle();
  #core: CoreInstance | undefined;
  #fn: PreludeExport | undefined;
  #inPtr = 0;
  #inCap = 0;
  #outPtr = 0;
  #outCap = 0;

  /** Same contract as parsePreludeJs (frames-js.ts). Bound so it can be passed around as a function. */
  readonly parse = (bytes: Uint8Array, limits: FrameLimits, start = 0): PreludeResult => this.#handle.run((core) => this.#parse(core, bytes, start, limits));

  #parse(core: CoreInstance, bytes: Uint8Array, start: number, limits: FrameLimits): PreludeResult {
    if (core !== this.#core) {
      // first call, or the handle rebuilt the instance after a trap: old pointers are void
      this.#core = core;
      this.#fn = core.exports["framePreludeParse"] as PreludeExport;
      this.#inCap = this.#outCap = 0;
    }
    // Copy only what the kernel can use: the prelude, whose size the u64 at offset 8 hints at.
    // The hint is not trusted (the kernel re-reads and validates it); it only bounds the copy,
    // so a 64 KiB socket chunk holding a 40-byte prelude costs a 40-byte copy.
    let len = bytes.length - start;
    if (len >= 16) {
      const h = start + 8;
      const hint = bytes[h + 4]! | bytes[h + 5]! | bytes[h + 6]! | bytes[h + 7]! ? Infinity : (bytes[h]! | (bytes[h + 1]! << 8) | (bytes[h + 2]! << 16) | (bytes[h + 3]! << 24)) >>> 0;
      const want = 16 + 8 * Math.min(hint, limits.maxFrames);
      if (want < len) len = want;
    }
    if (len > this.#inCap) {
      this.#inPtr = core.region(S.REGION_FRAME_IN, len);
      this.#inCap = core.exports.regionCapacity(S.REGION_FRAME_IN) >>> 0;
    }
    const outNeed = len + 24;
    if (outNeed > this.#outCap) {
      this.#outPtr = core.region(S.REGION_FRAME_OUT, outNeed);
      this.#outCap = core.exports.regionCapacity(S.REGION_FRAME_OUT) >>> 0;
    }
    core.u8().set(start === 0 && len === bytes.length ? bytes : bytes.subarray(start, start + len), this.#inPtr);
    const status = this.#fn!(this.#inPtr, len, this.#outPtr, limits.maxFrameBytes, limits.maxMessageBytes, limits.maxFrames);
    const dv = core.dv();
    const out = this.#outPtr;
    const size = dv.getFloat64(out, true);
    const counted = dv.getFloat64(out + 8, true);
    if (status !== S.STATUS_OK) return { status, bytes: status === S.STATUS_NEED_MORE ? size : 0, counted, lengths: [] };
    const n = dv.getFloat64(out + 16, true);
    const lengths = new Array<number>(n);
    for (let i = 0; i < n; i++) lengths[i] = dv.getFloat64(out + 24 + 8 * i, true);
    return { status, bytes: size, counted, lengths };
  }
}
