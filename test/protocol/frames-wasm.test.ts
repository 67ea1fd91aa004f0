// Contract of the frame kernel in both builds (cf. undici test/client-wasm.js): the exports exist
// with integer/f64 signatures, and the release and debug builds give the TS twin's answers on
// every captured message, parsed in place at a non-zero offset inside a larger chunk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as S from "../../assembly/status.ts";
import { CoreInstance } from "../../src/wasm/core.ts";
import { WasmPreludeParser } from "../../src/wasm/frame.ts";
import { DEFAULT_FRAME_LIMITS, parsePreludeJs } from "../../src/protocol/frames.ts";
import { VECTORS_2022, VECTORS_2026, vectorFiles } from "../helpers/env.ts";

const VECTORS = [...vectorFiles(VECTORS_2022), ...vectorFiles(VECTORS_2026)];

for (const file of ["core.wasm", "core.debug.wasm"]) {
  test(`${file}: exports framePreludeParse and frameVersion, agrees with the TS twin on every vector`, () => {
    const mod = new WebAssembly.Module(readFileSync(new URL(`../../build/${file}`, import.meta.url)));
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const n of ["framePreludeParse", "frameVersion"]) assert.ok(names.includes(n), `${file} exports ${n}`);
    const core = new CoreInstance(mod);
    assert.equal((core.exports["frameVersion"] as () => number)(), 1);
    // drive the raw export the way src/wasm/frame.ts does, but on this build's instance
    const parse = core.exports["framePreludeParse"] as (...a: number[]) => number;
    for (const { name, bytes } of VECTORS) {
      const expected = parsePreludeJs(bytes, DEFAULT_FRAME_LIMITS);
      assert.equal(expected.status, S.STATUS_OK, name);
      const inPtr = core.region(S.REGION_FRAME_IN, bytes.length);
      const outPtr = core.region(S.REGION_FRAME_OUT, bytes.length + 24);
      core.u8().set(bytes, inPtr);
      const { maxFrameBytes, maxMessageBytes, maxFrames } = DEFAULT_FRAME_LIMITS;
      assert.equal(parse(inPtr, bytes.length, outPtr, maxFrameBytes, maxMessageBytes, maxFrames), S.STATUS_OK, name);
      const dv = core.dv();
      assert.equal(dv.getFloat64(outPtr, true), bytes.length, `${name}: message size`);
      assert.equal(dv.getFloat64(outPtr + 8, true), expected.counted, `${name}: counted`);
      assert.equal(dv.getFloat64(outPtr + 16, true), expected.lengths.length, `${name}: nframes`);
      expected.lengths.forEach((l, i) => assert.equal(dv.getFloat64(outPtr + 24 + 8 * i, true), l, `${name}: len ${i}`));
    }
  });
}

test("both parsers read a prelude in place at an offset inside a larger chunk", () => {
  const wasm = new WasmPreludeParser();
  for (const { name, bytes } of VECTORS) {
    const chunk = new Uint8Array(bytes.length + 13);
    chunk.fill(0xff, 0, 13); // garbage before the message must not be read
    chunk.set(bytes, 13);
    const direct = parsePreludeJs(bytes, DEFAULT_FRAME_LIMITS);
    assert.deepEqual(parsePreludeJs(chunk, DEFAULT_FRAME_LIMITS, 13), direct, name);
    assert.deepEqual(wasm.parse(chunk, DEFAULT_FRAME_LIMITS, 13), direct, name);
    // and a prefix cut inside the length table asks for the whole prelude
    const cut = chunk.subarray(0, 13 + 20);
    const need = parsePreludeJs(cut, DEFAULT_FRAME_LIMITS, 13);
    assert.equal(need.status, S.STATUS_NEED_MORE);
    assert.equal(need.bytes, 16 + 8 * direct.lengths.length);
    assert.deepEqual(wasm.parse(cut, DEFAULT_FRAME_LIMITS, 13), need, name);
  }
});
