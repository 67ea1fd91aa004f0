// Wasm contract test (cf. undici test/client-wasm.js): both builds instantiate with our imports,
// export memory and the region allocator, and a trap is turned into a coded error with the
// instance rebuilt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CoreHandle, CoreInstance } from "../../src/wasm/core.ts";
import { WasmError } from "../../src/errors.ts";
import * as S from "../../assembly/status.ts";

for (const file of ["core.wasm", "core.debug.wasm"]) {
  test(`${file} instantiates and exports the region allocator`, () => {
    const mod = new WebAssembly.Module(readFileSync(new URL(`../../build/${file}`, import.meta.url)));
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const n of ["memory", "region", "regionCapacity"]) assert.ok(names.includes(n), `${file} exports ${n}`);
    const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`);
    for (const i of imports) assert.ok(["env.abort", "env.trace", "env.seed"].includes(i), `unexpected import ${i}`);
    const core = new CoreInstance(mod);
    const p = core.region(S.REGION_FRAME_IN, 10);
    assert.ok(p > 0);
    assert.equal(core.exports.regionCapacity(S.REGION_FRAME_IN), 4096);
    assert.equal(core.region(S.REGION_FRAME_IN, 4096), p, "capacity reused");
    const q = core.region(S.REGION_FRAME_IN, 100_000);
    assert.ok(core.exports.regionCapacity(S.REGION_FRAME_IN) >= 100_000);
    core.u8()[q + 99_999] = 7; // view re-created after growth
    assert.equal(core.exports.region(S.REGION_COUNT, 1), 0, "invalid region id refused");
  });
}

test("a trap becomes a coded WasmError and the instance is rebuilt", () => {
  const h = new CoreHandle();
  const first = h.instance;
  assert.throws(
    () => h.run(() => { throw new WebAssembly.RuntimeError("unreachable"); }),
    (e: unknown) => e instanceof WasmError && e.code === "DASK_ERR_WASM_TRAP",
  );
  assert.equal(h.traps, 1);
  assert.notEqual(h.instance, first);
  assert.equal(h.run((c) => c.exports.region(S.REGION_FRAME_IN, 1) > 0), true);
});
