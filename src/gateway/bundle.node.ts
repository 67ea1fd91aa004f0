// Builds what the gateway serves and what workerd runs, with esbuild, at gateway start (the
// operator's --module files are bundled in, so tabs never fetch code at run time):
// - the volunteer page: index.html, volunteer.js (page.ts), volunteer-worker.js (the Web
//   Worker: WorkerCore + InlineExecutor + gateway link), core.wasm and lz4.wasm;
// - the edge entry (src/edge/entry.ts) as one ES module for workerd, its .wasm imports left as
//   workerd module imports (workerd cannot compile Wasm at run time).
// The virtual module "dask-wasm:volunteer-config" carries the allow-listed module namespaces and
// the advertised resources. Node-only files (*.node.ts) are replaced by empty stubs: the one
// that a bundle can reach, comm/tcp.node.ts, is never loaded there (the link replaces tcp).
//
// IO: reads source files and the .wasm files; writes only where `bundleEdge` is told to.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { ConfigError } from "../errors.ts";
import type { GatewayAsset } from "./gateway.node.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface BundleOptions {
  /** ES module files whose exports the bundled worker may run (basename#export). */
  modules: readonly string[];
  /** Resources the bundled worker advertises. */
  resources: Record<string, number>;
  /** Edge only: .wasm files deployed with the worker (workerd cannot compile at run time). */
  wasmModules?: readonly string[];
}

function configPlugin(opts: BundleOptions): Plugin {
  const files = opts.modules.map((m) => resolve(m));
  const wasm = (opts.wasmModules ?? []).map((m) => resolve(m));
  const bases = files.map((f) => basename(f));
  const dup = bases.find((b, i) => bases.indexOf(b) !== i);
  if (dup) throw new ConfigError(`--module: two modules share the basename ${dup} (task references would be ambiguous)`);
  const contents = [
    ...files.map((f, i) => `import * as m${i} from ${JSON.stringify(f)};`),
    `export const modules = {${files.map((f, i) => `${JSON.stringify(basename(f))}: m${i}`).join(", ")}};`,
    `export const resources = ${JSON.stringify(opts.resources)};`,
    // Edge: each deployed .wasm is a workerd module import (precompiled), keyed by its sha256.
    ...wasm.map((f, i) => `import w${i} from ${JSON.stringify(`./task-modules/${basename(f)}`)};`),
    `export const wasmModules = {${wasm.map((f, i) => `${JSON.stringify(createHash("sha256").update(readFileSync(f)).digest("hex"))}: w${i}`).join(", ")}};`,
  ].join("\n");
  return {
    name: "dask-wasm-config",
    setup(b) {
      b.onResolve({ filter: /^dask-wasm:volunteer-config$/ }, () => ({ path: "volunteer-config", namespace: "dask-wasm" }));
      b.onLoad({ filter: /.*/, namespace: "dask-wasm" }, () => ({ contents, loader: "js", resolveDir: ROOT }));
      b.onResolve({ filter: /\.node\.ts$/ }, (args) => ({ path: args.path, namespace: "node-stub" }));
      b.onLoad({ filter: /.*/, namespace: "node-stub" }, () => ({ contents: "export {};", loader: "js" }));
    },
  };
}

async function bundle(entry: string, opts: BundleOptions, extra: { external?: string[]; platform?: "browser" | "neutral"; conditions?: string[] } = {}): Promise<string> {
  const result = await build({
    entryPoints: [join(ROOT, entry)],
    bundle: true,
    format: "esm",
    platform: extra.platform ?? "browser",
    ...(extra.conditions ? { conditions: extra.conditions } : {}),
    target: "es2022",
    write: false,
    minify: false,
    sourcemap: false,
    legalComments: "none",
    logLevel: "silent",
    external: extra.external ?? [],
    plugins: [configPlugin(opts)],
  });
  return result.outputFiles[0]!.text;
}

export function coreWasmPath(): string {
  return join(ROOT, "build/core.wasm");
}

export function lz4WasmPath(): string {
  return fileURLToPath(import.meta.resolve("lz4-wasm/lz4_wasm_bg.wasm"));
}

/** Everything the volunteer page needs, by URL path. */
export async function buildVolunteerAssets(opts: BundleOptions): Promise<Map<string, GatewayAsset>> {
  const [page, worker] = await Promise.all([bundle("src/browser/page.ts", opts), bundle("src/browser/volunteer-worker.ts", opts)]);
  return new Map<string, GatewayAsset>([
    ["/index.html", { body: readFileSync(join(ROOT, "src/browser/index.html"), "utf8"), type: "text/html; charset=utf-8" }],
    ["/volunteer.js", { body: page, type: "text/javascript; charset=utf-8" }],
    ["/volunteer-worker.js", { body: worker, type: "text/javascript; charset=utf-8" }],
    ["/core.wasm", { body: readFileSync(coreWasmPath()), type: "application/wasm" }],
    ["/lz4.wasm", { body: readFileSync(lz4WasmPath()), type: "application/wasm" }],
  ]);
}

/**
 * The workerd entry as build/edge/worker.js (or `outDir`), plus copies of the .wasm it imports
 * next to it, so edge/workerd.capnp can embed them by relative path.
 */
export async function bundleEdge(opts: BundleOptions & { outDir?: string }): Promise<string> {
  const outDir = resolve(opts.outDir ?? join(ROOT, "build/edge"));
  const code = await bundle("src/edge/entry.ts", opts, { external: ["./core.wasm", "./lz4.wasm", "./task-modules/*"], platform: "neutral", conditions: ["workerd", "worker", "browser"] });
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, "worker.js"), code);
  await writeFile(join(outDir, "core.wasm"), readFileSync(coreWasmPath()));
  await writeFile(join(outDir, "lz4.wasm"), readFileSync(lz4WasmPath()));
  await mkdir(join(outDir, "task-modules"), { recursive: true });
  for (const f of opts.wasmModules ?? []) await writeFile(join(outDir, "task-modules", basename(f)), readFileSync(f));
  return join(outDir, "worker.js");
}
