// Function registry and Wasm compile cache for the executor.
//
// - `loadModules(paths)`: dynamic-imports the `--module` ES modules (absolute file URLs) and
//   indexes their exported functions as "<basename>#<export>" ("tasks.js#inc"), the names tasks
//   use (DESIGN.md "Tasks"). Runs in every executor thread (each thread has its own module graph).
// - `WasmCache`: compiles a Wasm module once per content hash (sha256 of the bytes) in the main
//   thread; the WebAssembly.Module is then posted to threads, which only instantiate it.
//
// IO: reads module files (import) and hashes bytes; nothing else. Must not: run a task, import a
// module that was not given with --module, or compile the same bytes twice.
import { createHash } from "node:crypto";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, DaskError } from "../errors.ts";

/** "basename#export" -> exported function. */
export type Registry = ReadonlyMap<string, (...args: unknown[]) => unknown>;

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
  const reg = new Map<string, (...args: unknown[]) => unknown>();
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
    for (const [name, value] of Object.entries(ns)) {
      if (typeof value === "function") reg.set(`${base}#${name}`, value as (...args: unknown[]) => unknown);
    }
  }
  return reg;
}

/** Looks up "tasks.js#inc"; a missing name is a coded task failure naming what exists. */
export function lookupExport(reg: Registry, ref: string): (...args: unknown[]) => unknown {
  const fn = reg.get(ref);
  if (fn) return fn;
  const known = [...reg.keys()].slice(0, 20).join(", ");
  throw new DaskError("DASK_ERR_UNKNOWN_FUNCTION", `no registered export ${JSON.stringify(ref)} (loaded: ${known || "none; start the worker with --module"})`);
}

/** Content hash of Wasm bytes: the cache key in the main thread and in every thread. */
export function wasmHash(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Compiled modules by content hash. Compilation is async (off the event loop in V8) and
 * concurrent requests for the same bytes share one compile. A failed compile is forgotten, not
 * cached: the entry would only ever hold that error, and the map stays bounded by good modules.
 */
export class WasmCache {
  #modules = new Map<string, Promise<WebAssembly.Module>>();
  #compiled = 0;
  /** Distinct modules compiled successfully (the `wasm_modules_compiled_total` metric). */
  get compiled(): number {
    return this.#compiled;
  }
  get size(): number {
    return this.#modules.size;
  }

  async get(bytes: Uint8Array): Promise<{ hash: string; module: WebAssembly.Module }> {
    if (!(bytes instanceof Uint8Array)) {
      throw new DaskError("DASK_ERR_WASM_MODULE", "a Wasm task's first argument must be the module bytes");
    }
    const hash = wasmHash(bytes);
    let p = this.#modules.get(hash);
    if (!p) {
      p = WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>).then(
        (m) => {
          this.#compiled++;
          return m;
        },
        (e: unknown) => {
          this.#modules.delete(hash);
          throw new DaskError("DASK_ERR_WASM_MODULE", `the Wasm module does not compile: ${(e as Error).message}`, { cause: e });
        },
      );
      this.#modules.set(hash, p);
    }
    return { hash, module: await p };
  }
}
