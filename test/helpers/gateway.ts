// Live-test helper: starts `node src/cli/main.ts gateway --scheduler … --port 0 --module …` (the
// dask-wasm gateway) as a child process, waits for its "volunteer page at: URL" line, reads its
// GET /status, and stops it.
//
// Must not: sleep, leave a process behind (every child is tracked; `stopGateways()` in `after()`
// stops what is still running), or bind anything but 127.0.0.1. Readiness is a log line and every
// wait has a deadline that fails with the log tail.
import { spawn, type ChildProcess } from "node:child_process";
import { REPO } from "./env.ts";
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

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** Starts a gateway for `scheduler` and resolves once it serves its page. */
export async function startGateway(scheduler: string, opts: GatewayOptions = {}): Promise<GatewayProcess> {
  const args = [REPO + "src/cli/main.ts", "gateway", "--scheduler", scheduler, "--host", "127.0.0.1", "--port", "0"];
  for (const m of opts.modules ?? [TASKS_JS]) args.push("--module", m);
  if (opts.resources) args.push("--resources", Object.entries(opts.resources).map(([k, v]) => `${k}=${v}`).join(" "));
  args.push(...(opts.args ?? []));
  const proc = spawn(process.execPath, args, { cwd: REPO, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }> = [];
  proc.once("exit", (code, signal) => {
    exited = true;
    for (const w of waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`dask-wasm gateway exited (code ${code}, signal ${signal}) before printing ${w.pattern}:\n${tail(text)}`));
    }
  });
  const onData = (chunk: Buffer): void => {
    text += chunk.toString("utf8");
    for (const w of [...waiters]) {
      const m = text.match(w.pattern);
      if (m) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);

  const waitFor = (pattern: RegExp, timeoutMs = READY_TIMEOUT_MS): Promise<RegExpMatchArray> => {
    const m = text.match(pattern);
    if (m) return Promise.resolve(m);
    if (exited) return Promise.reject(new Error(`dask-wasm gateway has exited; no ${pattern} in:\n${tail(text)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.findIndex((w) => w.timer === timer), 1);
        reject(new Error(`dask-wasm gateway did not print ${pattern} within ${timeoutMs} ms:\n${tail(text)}`));
      }, timeoutMs);
      waiters.push({ pattern, resolve, reject, timer });
    });
  };

  let url = "";
  const handle: GatewayProcess = {
    proc,
    get url() {
      return url;
    },
    log: () => text,
    waitFor,
    async status() {
      const res = await fetch(new URL("/status", url));
      if (res.status !== 200) throw new Error(`GET ${url}status -> ${res.status}`);
      return (await res.json()) as GatewayStatus;
    },
    async stop() {
      running.delete(handle);
      if (exited || proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), KILL_GRACE_MS);
      await exitedPromise;
      clearTimeout(killer);
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
