// The virtual module the gateway's bundler generates for the volunteer Web Worker and the edge
// entry (src/gateway/bundle.node.ts): the allow-listed modules (imported at build time, never
// fetched at run time) and the resources this kind of worker advertises.
declare module "dask-wasm:volunteer-config" {
  /** Module basename ("tasks.js") -> its namespace. */
  export const modules: Record<string, Record<string, unknown>>;
  export const resources: Record<string, number>;
  /** Edge bundles only: sha256 of a deployed .wasm's bytes -> the module workerd compiled at deploy time. */
  export const wasmModules: Record<string, WebAssembly.Module>;
}
