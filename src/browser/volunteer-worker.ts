// The volunteer page's Web Worker: the whole dask worker of a browser tab. It loads the core and
// lz4 Wasm from the gateway (same origin), joins through the gateway (src/gateway/
// remote-worker.ts), runs tasks inline in this thread (so the page's own thread stays
// responsive), and posts its status to the page every 250 ms and on every change.
//
// Security: tasks may run only the exports of the modules the gateway operator bundled
// (dask-wasm:volunteer-config) and Wasm modules sent as data; shipped source is refused
// (allowSource is never set here, and the page's CSP forbids eval on top).
// Must not: import anything Node-only, or evaluate code received from the network.
import { modules, resources } from "dask-wasm:volunteer-config";
import { setCoreModule } from "../wasm/core.ts";
import { setLz4Module } from "../protocol/lz4.ts";
import { InlineExecutor, registryFromNamespaces } from "../worker/task-runner.ts";
import type { WorkerPlatform } from "../worker/worker-core.ts";
import { startRemoteWorker, type RemoteWorker } from "../gateway/remote-worker.ts";
import type { VolunteerStatus, PageCommand } from "./protocol.ts";

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (e: { data: unknown }) => void): void;
  location: { origin: string; search: string };
  navigator: { userAgent: string; hardwareConcurrency?: number };
}
const scope = globalThis as unknown as WorkerScope;

let remote: RemoteWorker | undefined;
let executor: InlineExecutor | undefined;
let state: VolunteerStatus["state"] = "connecting";
let error = "";
let name = "";

function status(): VolunteerStatus {
  const m = remote?.worker.metrics();
  const stats = remote?.link.stats;
  return {
    state,
    name,
    address: remote?.worker.address ?? "",
    scheduler: remote?.scheduler ?? "",
    tasksDone: m ? m.tasksRun - m.tasksFailed : 0,
    tasksFailed: m?.tasksFailed ?? 0,
    keysHeld: m?.keysStored ?? 0,
    bytesHeld: m?.bytesStored ?? 0,
    current: executor?.current ?? "",
    transfersOut: m?.transfersOut ?? 0,
    transfersIn: m?.transfersIn ?? 0,
    channels: stats?.channelsOpen ?? 0,
    error,
  };
}

let last = "";
function post(): void {
  const s = status();
  const text = JSON.stringify(s);
  if (text === last) return;
  last = text;
  scope.postMessage({ t: "status", status: s });
}

function browserPlatform(): WorkerPlatform {
  return {
    createExecutor: () => (executor = new InlineExecutor({ registry: registryFromNamespaces(modules), allowSource: false })),
    host: { OS: "browser", machine: scope.navigator.userAgent },
    packages: {},
    localDirectory: "",
    pid: 0,
    rss: () => (performance as { memory?: { usedJSHeapSize?: number } }).memory?.usedJSHeapSize ?? 0,
  };
}

async function join(): Promise<void> {
  const origin = scope.location.origin;
  const [core, lz4] = await Promise.all([WebAssembly.compileStreaming(fetch(`${origin}/core.wasm`)), WebAssembly.compileStreaming(fetch(`${origin}/lz4.wasm`))]);
  setCoreModule(core);
  setLz4Module(lz4);
  const query = new URLSearchParams(scope.location.search);
  name = query.get("name") ?? `tab-${globalThis.crypto.randomUUID().slice(0, 8)}`;
  remote = await startRemoteWorker({
    gateway: origin,
    name,
    nthreads: 1,
    resources,
    platform: browserPlatform(),
    log: (level, message) => {
      if (level === "warning" || level === "error") console.warn(`[dask-wasm tab] ${level}: ${message}`);
    },
  });
  state = "running";
  void remote.worker.closed.then(() => {
    state = "closed";
    post();
  });
}

scope.addEventListener("message", (e) => {
  const cmd = e.data as PageCommand;
  if (cmd?.t === "leave" && remote) {
    state = "leaving";
    post();
    void remote.close("volunteer-left").then(() => {
      state = "closed";
      post();
    });
  }
});

setInterval(post, 250);
join().then(post, (e: unknown) => {
  state = "failed";
  error = e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e);
  post();
});
