// Live-test helper: starts `node src/cli/main.ts gateway --scheduler … --port 0 --module …` (the
// dask-wasm gateway) as a child process, waits for its "volunteer page at: URL" line, reads its
// GET /status, and stops it.
//
// Must not: sleep, leave a process behind (every child is tracked; `stopGateways()` in `after()`
// stops what is still running), or bind anything but 127.0.0.1. Readiness is a log line and every
// wait has a deadline that fails with the log tail.
import { spawn, type ChildProcess } from "node:child_process";
import { REPO } from "./env.ts";
import { watchOutput } from "./output.ts";
import { TASKS_JS } from "./wasm-worker.ts";

/** Overall limit for the gateway to bundle the page and listen (esbuild on the 2-core box: ~1-3 s). */
const READY_TIMEOUT_MS = 60_000;
/** SIGTERM -> SIGKILL grace; the gateway closes its links at once. */
const KILL_GRACE_MS = 5_000;

export interface GatewayOptions {
  /** --module files bundled into the page (default [examples/tasks.js]). */
  modules?: string[];
  /** --resources, e.g. { wasm: 1, browser: 1 } (default: the CLI's own, "wasm=1 browser=1"). */
  resources?: Record<string, number>;
  args?: string[];
}

/** One worker as the gateway's GET /status lists it. */
export interface GatewayStatusWorker {
  id: number;
  address: string;
  remote: string;
  channels: number;
  connectedAt: number;
}

export interface GatewayStatus {
  scheduler: string;
  workers: GatewayStatusWorker[];
}

export interface GatewayProcess {
  readonly proc: ChildProcess;
  /** http://127.0.0.1:PORT/ from "volunteer page at:". */
  readonly url: string;
  /** Everything printed so far (stdout and stderr interleaved). */
  log(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** GET /status, parsed. */
  status(): Promise<GatewayStatus>;
  /** SIGTERM, SIGKILL after a grace; resolves once the process has exited. */
  stop(): Promise<void>;
}

const running = new Set<GatewayProcess>();


/** Starts a gateway for `scheduler` and resolves once it serves its page. */
export async function startGateway(scheduler: string, opts: GatewayOptions = {}): Promise<GatewayProcess> {
  const args = [REPO + "src/cli/main.ts", "gateway", "--scheduler", scheduler, "--host", "127.0.0.1", "--port", "0"];
  for (const m of opts.modules ?? [TASKS_JS]) args.push("--module", m);
  if (opts.resources) args.push("--resources", Object.entries(opts.resources).map(([k, v]) => `${k}=${v}`).join(" "));
  args.push(...(opts.args ?? []));
  const proc = spawn(process.execPath, args, { cwd: REPO, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
  const out = watchOutput(proc, "dask-wasm gateway", READY_TIMEOUT_MS);
  const waitFor = out.waitFor;

  let url = "";
  const handle: GatewayProcess = {
    proc,
    get url() {
      return url;
    },
    log: out.log,
    waitFor,
    async status() {
      const res = await fetch(new URL("/status", url));
      if (res.status !== 200) throw new Error(`GET ${url}status -> ${res.status}`);
      return (await res.json()) as GatewayStatus;
    },
    async stop() {
      running.delete(handle);
      await out.stop(KILL_GRACE_MS);
    },
  };
  running.add(handle);
  try {
    url = (await waitFor(/volunteer page at:\s+(https?:\/\/[0-9.]+:\d+\/)/))[1]!;
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}

/** Stops every gateway started here that is still running. For `after()` hooks. */
export async function stopGateways(): Promise<void> {
  await Promise.all([...running].map((g) => g.stop()));
}
