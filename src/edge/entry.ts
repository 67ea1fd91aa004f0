// The workerd entry: a dask worker inside an edge function. workerd cannot listen for peers or
// compile Wasm at run time, so the worker joins through `dask-wasm gateway` (outbound WebSocket)
// and its Wasm comes precompiled as module imports: the core and lz4 modules, and the task
// modules the operator deployed (matched by sha256 when a task sends their bytes as data).
//
// Requests: GET /start?gateway=http://HOST:PORT starts the worker and streams one status line
// per second until it leaves (the request must stay open: workerd ties every socket and timer to
// the request that made it); GET /stop makes it leave. Config: edge/workerd.capnp; bundle:
// `dask-wasm edge-bundle` (src/gateway/bundle.node.ts bundleEdge).
//
// Must not: evaluate source (workerd forbids it anyway; allowSource is never set), or compile
// Wasm bytes (compile: false: unknown modules fail with DASK_ERR_WASM_NOT_BUNDLED).
import coreModule from "./core.wasm";
import lz4Module from "./lz4.wasm";
import { modules, resources, wasmModules } from "dask-wasm:volunteer-config";
import { setCoreModule } from "../wasm/core.ts";
import { setLz4Module } from "../protocol/lz4.ts";
import { InlineExecutor, registryFromNamespaces, WasmCache } from "../worker/task-runner.ts";
import type { WorkerPlatform } from "../worker/worker-core.ts";
import { startRemoteWorker, type RemoteWorker } from "../gateway/remote-worker.ts";

setCoreModule(coreModule);
setLz4Module(lz4Module);

let remote: RemoteWorker | undefined;
/** Set by GET /stop; the worker's own request acts on it (workerd forbids IO across requests). */
let stopRequested = false;

function edgePlatform(): WorkerPlatform {
  return {
    createExecutor: () =>
      new InlineExecutor({
        registry: registryFromNamespaces(modules),
        allowSource: false,
        wasmCache: new WasmCache({ precompiled: new Map(Object.entries(wasmModules)), compile: false }),
      }),
    host: { OS: "workerd", machine: "edge" },
    packages: {},
    localDirectory: "",
    pid: 0,
    rss: () => 0,
  };
}

function statusLine(): string {
  const m = remote?.worker.metrics();
  return JSON.stringify({ state: remote?.worker.status ?? "idle", address: remote?.worker.address ?? "", name: remote?.worker.name ?? "", tasksRun: m?.tasksRun ?? 0, tasksFailed: m?.tasksFailed ?? 0, keysStored: m?.keysStored ?? 0 }) + "\n";
}

async function run(gateway: string, name: string, out: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
  const enc = new TextEncoder();
  try {
    remote = await startRemoteWorker({ gateway, name, nthreads: 1, resources, platform: edgePlatform() });
    await out.write(enc.encode(statusLine()));
    let ticks = 0;
    const ticker = setInterval(() => {
      if (stopRequested && remote) {
        stopRequested = false;
        void remote.close("edge-stop");
      }
      if (++ticks % 5 === 0) void out.write(enc.encode(statusLine())).catch(() => {});
    }, 200);
    await remote.worker.closed;
    clearInterval(ticker);
    await out.write(enc.encode(statusLine()));
  } catch (e) {
    await out.write(enc.encode(JSON.stringify({ state: "failed", error: `${(e as { code?: string }).code ?? (e as Error).name}: ${(e as Error).message}` }) + "\n"));
  } finally {
    remote = undefined;
    await out.close().catch(() => {});
  }
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/start") {
      const gateway = url.searchParams.get("gateway");
      if (!gateway) return new Response("missing ?gateway=http://HOST:PORT\n", { status: 400 });
      if (remote) return new Response("already running\n", { status: 409 });
      stopRequested = false;
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      // Not awaited: the response streams while the worker runs, which keeps this request alive.
      void run(gateway, url.searchParams.get("name") ?? "edge-worker", writable.getWriter());
      return new Response(readable, { headers: { "content-type": "application/x-ndjson" } });
    }
    if (url.pathname === "/stop") {
      // workerd forbids IO across requests: the worker's own request closes it when told.
      if (!remote) return new Response("not running\n", { status: 404 });
      stopRequested = true;
      return new Response("stopping\n");
    }
    return new Response(statusLine(), { headers: { "content-type": "application/json" } });
  },
};
