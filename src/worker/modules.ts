// Function registry and Wasm compile cache for the executor.
//
// - `loadModules(paths)`: dynamic-imports the `--module` ES modules (absolute file URLs) and
//   indexes their exported functions as "<basename>#<export>" ("tasks.js#inc"), the names tasks
//   use (DESIGN.md "Tasks"). Runs in every executor thread (each thread has its own module graph).
// - `wasmHash`: the synchronous sha256 the Node executor keys its WasmCache (task-runner.ts) by;
//   the module is compiled once in the main thread and posted to threads, which only instantiate it.
//
// IO: reads module files (import) and hashes bytes; nothing else. Must not: run a task, import a
// module that was not given with --module, or compile the same bytes twice.
import { createHash } from "node:crypto";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, DaskError } from "../errors.ts";
import { registryFromNamespaces, type Registry } from "./task-runner.ts";

/** "basename#export" -> exported function (task-runner.ts, platform-neutral). */
export type { Registry } from "./task-runner.ts";
export { lookupExport, WasmCache } from "./task-runner.ts";

/** A --module argument (path or file URL) -> absolute file URL string (what import() needs). */
export function moduleUrl(path: string): string {
  if (path.startsWith("file:")) return new URL(path).href;
  return pathToFileURL(resolve(path)).href;
}

/** Basename of a module URL: the part of a task reference before "#". */
export function moduleBasename(url: string): string {
  return basename(new URL(url).pathname);
}

/**
 * Imports every module and indexes its exported functions. Two modules with the same basename
 * are refused (a task reference would be ambiguous). Non-function exports are not callable.
 */
export async function loadModules(urls: readonly string[]): Promise<Registry> {
  const namespaces: Record<string, Record<string, unknown>> = {};
  const seen = new Map<string, string>();
  for (const url of urls) {
    const base = moduleBasename(url);
    const prev = seen.get(base);
    if (prev !== undefined && prev !== url) throw new ConfigError(`options.modules: ${prev} and ${url} share the basename ${base}`);
    seen.set(base, url);
    let ns: Record<string, unknown>;
    try {
      ns = (await import(url)) as Record<string, unknown>;
    } catch (e) {
      throw new DaskError("DASK_ERR_MODULE_LOAD", `cannot load module ${url}: ${(e as Error).message}`, { cause: e });
    }
    namespaces[base] = ns;
  }
  // Indexed as the bundled runtimes index theirs (browser page, workerd entry).
  return registryFromNamespaces(namespaces);
}

/** Content hash of Wasm bytes: the cache key in the main thread and in every thread. */
export function wasmHash(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
