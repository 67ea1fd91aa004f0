// The core module's exports, and nothing else (STYLE.md §1). One module, build/core.wasm
// (release) and build/core.debug.wasm (debug), instantiated once per JS facade so that a trap
// in one kernel never takes another kernel's state with it (src/wasm/core.ts).
// Every export takes and returns integers; bytes travel through regions (memory.ts).
export { region, regionCapacity } from "./memory";
export * from "./frame";
export * from "./msgpack/index";
export * from "./token";
export * from "./store";
