// Public exports of dask-wasm, and nothing else (cf. msgpack-javascript src/index.ts).
export { DaskError, ProtocolError, PickleError, WasmError, StoreError, ConfigError, errorFromStatus } from "./errors.ts";
export { setCoreModule } from "./wasm/core.ts";
