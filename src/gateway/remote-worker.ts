// A worker that joins through `dask-wasm gateway` (browser Web Worker, workerd, or a Node
// process behind NAT): asks the gateway which scheduler it serves (GET /status), opens the link
// (link.ts), makes the link the "tcp" transport of this runtime's comm registry, and starts a
// WorkerCore with the caller's platform. Shared by src/browser/volunteer-worker.ts,
// src/edge/entry.ts and `dask-wasm worker --gateway`.
//
// IO: one fetch, the link's WebSocket. Must not: run in a process that also needs real TCP
// comms (the "tcp" backend is replaced for the whole runtime), or decide anything about tasks.
import { registerBackend } from "../comm/registry.ts";
import { ConfigError } from "../errors.ts";
import type { WebSocketFactory } from "../comm/ws.ts";
import { WorkerCore, type WorkerOptions, type WorkerPlatform } from "../worker/worker-core.ts";
import { GatewayLink } from "./link.ts";

export interface RemoteWorkerOptions extends Omit<WorkerOptions, "scheduler" | "listenAddress" | "contactAddress"> {
  /** The gateway's page URL (http(s)://host:port); its /status and /worker endpoints are used. */
  gateway: string;
  platform: WorkerPlatform;
  /** How to open the WebSocket (workerd: fetch + Upgrade). Default: the global WebSocket. */
  webSocket?: WebSocketFactory;
  /** How to GET /status (default: the global fetch). */
  fetch?: (url: string) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;
}

export interface RemoteWorker {
  worker: WorkerCore;
  link: GatewayLink;
  scheduler: string;
  /** Leaves the cluster (close-stream to the scheduler), then closes the link. */
  close(reason?: string): Promise<void>;
}

/** http(s)://h:p -> ws(s)://h:p/worker */
export function gatewayWorkerUrl(gateway: string): string {
  const u = new URL(gateway);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new ConfigError(`the gateway URL must be http(s)://, got ${gateway}`);
  return `${u.protocol === "https:" ? "wss:" : "ws:"}//${u.host}/worker`;
}

export async function startRemoteWorker(opts: RemoteWorkerOptions): Promise<RemoteWorker> {
  const { gateway, webSocket, fetch: fetchFn, ...workerOpts } = opts;
  const get = fetchFn ?? ((url: string) => globalThis.fetch(url));
  const res = await get(new URL("/status", gateway).href);
  if (!res.ok) throw new ConfigError(`GET ${gateway}/status answered ${res.status}: is this a dask-wasm gateway?`);
  const scheduler = String(((await res.json()) as { scheduler?: unknown }).scheduler ?? "");
  if (!scheduler) throw new ConfigError(`${gateway}/status names no scheduler`);
  const link = await GatewayLink.open(gatewayWorkerUrl(gateway), webSocket);
  registerBackend("tcp", link.backend);
  const worker = new WorkerCore({ ...workerOpts, scheduler });
  // The gateway going away is the worker's network going away: leave as dask does on a lost scheduler.
  void link.closed.then(() => worker.close("gateway-closed"));
  try {
    await worker.start();
  } catch (e) {
    link.close();
    await worker.close("start-failed").catch(() => {});
    throw e;
  }
  return {
    worker,
    link,
    scheduler,
    async close(reason = "worker-close") {
      await worker.close(reason);
      link.close();
    },
  };
}
