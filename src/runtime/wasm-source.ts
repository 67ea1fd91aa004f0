// Where the core Wasm module comes from on each platform. Node reads build/core.wasm from the
// package (synchronously, through process.getBuiltinModule so bundlers never see `node:fs`);
// browsers and workerd hand a precompiled WebAssembly.Module to `setCoreModule` instead
// (workerd forbids run-time compilation from bytes).

type FsLike = { readFileSync(path: URL): Uint8Array };

/** Bytes of the core module on Node, or undefined where there is no file system. */
export function readCoreWasmBytes(debug: boolean): Uint8Array | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.("node:fs") as FsLike | undefined;
  if (!fs) return undefined;
  const url = new URL(debug ? "../../build/core.debug.wasm" : "../../build/core.wasm", import.meta.url);
  return fs.readFileSync(url);
}

/** DASK_WASM_* settings where the platform has an environment (Node); the CLI is the other reader. */
export function envFlag(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}
