#!/usr/bin/env node
// `dask-wasm` command-line entry: `node src/cli/main.ts worker tcp://HOST:PORT [flags]` (Node 24
// runs the .ts directly; older Node cannot, so the package.json `bin` is documented as this
// command). This is the only module that reads process.env and argv, installs signal handlers
// or exits; it must not contain worker logic (src/worker/worker.ts) or parsing rules (args.ts).
//
// Process shape: dask-worker's nanny sets MALLOC_TRIM_THRESHOLD_ so glibc returns freed memory
// to the OS (distributed/nanny.py, `distributed.nanny.pre-spawn-environ`); glibc reads it only
// at process start, so when it is missing we re-run ourselves once with it set. The re-run child
// gets its own process group (a terminal's Ctrl-C reaches only this parent, which forwards it
// exactly once, so the child does not mistake one Ctrl-C for the "second signal, exit now") and
// an IPC channel whose disconnect tells it that the parent died without forwarding anything.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import { existsSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigError, DaskError } from "../errors.ts";
import { parseArgs, type GatewayCliOptions, type SystemInfo, type WorkerCliOptions } from "./args.ts";
import { startHttpServer, type HttpServerHandle } from "./http.ts";
import type { Worker as WorkerClass } from "../worker/worker.ts";

/** Value dask's nanny uses (distributed.yaml `pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: 65536`). */
const MALLOC_TRIM_THRESHOLD = "65536";
/** Marks the re-run child, so it never re-runs again and knows to watch its parent. */
const CHILD_MARK = "DASK_WASM_CLI_CHILD";
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function log(line: string): void {
  process.stderr.write(line + "\n");
}

/** One line for an error: its code first, so logs can be grepped by code. */
function describe(error: unknown): string {
  if (error instanceof DaskError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${(error as { code?: string }).code ?? error.name}: ${error.stack ?? error.message}`;
  return String(error);
}

function fail(error: unknown, exitCode: number): never {
  log(`dask-wasm: error ${describe(error)}`);
  process.exit(exitCode);
}

/** CPU count and memory as distributed/system.py sees them: RAM capped by a cgroup limit. */
function systemInfo(): SystemInfo {
  let memory = os.totalmem();
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const n = Number(readFileSync(file, "utf8").trim()); // "max" -> NaN -> ignored
      if (Number.isFinite(n) && n > 0) memory = Math.min(memory, n);
    } catch {
      // no such cgroup file on this machine
    }
  }
  return { cpuCount: os.availableParallelism(), memoryLimit: memory };
}

/** Re-runs this very command with MALLOC_TRIM_THRESHOLD_ set; mirrors the child's exit. */
function reexec(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    env: { ...process.env, MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD, [CHILD_MARK]: "1" },
    detached: true,
  });
  for (const sig of SIGNALS) process.on(sig, () => child.kill(sig));
  child.on("error", (error) => fail(error, 1));
  child.on("exit", (code, signal) => {
    // Exit as the child did: its code, or 128+signal like a shell reports a signalled child.
    process.exit(signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1));
  });
}

/**
 * The local IP through which `scheduler` is reachable (distributed.utils.get_ip: a UDP
 * "connect" sends nothing, it only makes the kernel pick the route's source address).
 * dask-worker without --host advertises exactly that address; we also listen only on it
 * (never on every interface by default). Loopback when the scheduler is on loopback.
 */
function localAddressFor(scheduler: string): Promise<string> {
  const m = /^tcp:\/\/\[?([^\]]*?)\]?:(\d+)$/.exec(scheduler);
  if (!m) return Promise.resolve("127.0.0.1");
  const [host, port] = [m[1]!, Number(m[2])];
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(host) ? "udp6" : "udp4");
    const done = (ip: string): void => {
      sock.close();
      resolve(ip);
    };
    // No route (or a name that does not resolve): fall back to loopback, as get_ip falls
    // back to the host name; the registration then fails with a clear connect error.
    sock.once("error", () => done("127.0.0.1"));
    sock.connect(port, host, () => {
      // A failed name lookup can still call back, unbound: the wildcard address means "no route".
      let ip = "";
      try {
        ip = sock.address().address;
      } catch {
        // not connected after all
      }
      done(ip === "" || ip === "0.0.0.0" || ip === "::" ? "127.0.0.1" : ip);
    });
  });
}

async function defaultListenAddress(scheduler: string): Promise<string> {
  const ip = await localAddressFor(scheduler);
  return `tcp://${isIPv6(ip) ? `[${ip}]` : ip}:0`;
}

/** Module paths resolved against the working directory, each checked to exist once, here. */
function resolveModules(modules: readonly string[]): string[] {
  return modules.map((m) => {
    const abs = path.resolve(m);
    if (!existsSync(abs) || !statSync(abs).isFile()) throw new ConfigError(`--module: no such file '${m}' (resolved to ${abs})`);
    return abs;
  });
}

async function runWorker(opts: WorkerCliOptions): Promise<void> {
  const modules = resolveModules(opts.modules);
  const localDirectory = opts.localDirectory === undefined ? undefined : path.resolve(opts.localDirectory);
  // Imported here, not at the top, so `--help` and argument errors do not load the worker stack.
  const { Worker } = await import("../worker/worker.ts");
  let worker: WorkerClass | undefined;
  let http: HttpServerHandle | undefined;
  if (opts.dashboardAddress) {
    // The HTTP server comes first: its port goes into register-worker's `services`.
    http = await startHttpServer({
      ...opts.dashboardAddress,
      metrics: () => {
        if (!worker) throw new Error("the worker is not constructed yet");
        return worker.metrics();
      },
    });
  }
  worker = new Worker({
    scheduler: opts.scheduler,
    nthreads: opts.nthreads,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    memoryLimit: opts.memoryLimit ?? 0,
    resources: opts.resources,
    ...(localDirectory !== undefined ? { localDirectory } : {}),
    listenAddress: opts.listenAddress ?? (await defaultListenAddress(opts.scheduler)),
    ...(opts.contactAddress !== undefined ? { contactAddress: opts.contactAddress } : {}),
    modules,
    allowSource: opts.allowSource,
    ...(http ? { dashboardPort: http.port } : {}),
    log: (level, message, error) => {
      if (level !== "debug") log(`[dask-wasm worker] ${level}: ${message}${error ? ` (${describe(error)})` : ""}`);
    },
  });
  const w = worker;

  // Shutdown: one path for a signal, a parent that died and the worker closing on its own
  // (scheduler gone or `terminate`). A second signal while closing exits at once.
  let shuttingDown = false;
  const shutdown = (reason: string): void => {
    if (shuttingDown) {
      log(`dask-wasm: ${reason} again while closing; exiting now`);
      process.exit(1);
    }
    shuttingDown = true;
    log(`dask-wasm: ${reason}; closing the worker`);
    const done = async (): Promise<void> => {
      await w.close(reason).catch((error: unknown) => log(`dask-wasm: close failed: ${describe(error)}`));
      await http?.close();
      log("dask-wasm: worker closed");
      process.exit(0);
    };
    void done();
  };
  for (const sig of SIGNALS) process.on(sig, () => shutdown(`received ${sig}`));
  if (process.env[CHILD_MARK] === "1" && process.channel) {
    // The channel must not keep us alive; it only reports the parent's death.
    process.channel.unref();
    process.on("disconnect", () => shutdown("parent process exited"));
  }

  await w.start();
  log(`dask-wasm worker at: ${w.address}`);
  if (http) log(`dashboard at: ${http.url}`);
  log(`Registered to: ${opts.scheduler}`);
  log(`name: ${w.name}, nthreads: ${opts.nthreads}, memory limit: ${opts.memoryLimit ?? "none"}, resources: ${JSON.stringify(opts.resources)}`);
  void w.closed.then(() => {
    if (!shuttingDown) shutdown("the worker closed itself");
  });
}

/** `dask-wasm gateway`: build the page (bundling --module files), serve it, relay until a signal. */
async function runGateway(opts: GatewayCliOptions): Promise<void> {
  const modules = resolveModules(opts.modules);
  const { Gateway } = await import("../gateway/gateway.node.ts");
  const { buildVolunteerAssets } = await import("../gateway/bundle.node.ts");
  const assets = await buildVolunteerAssets({ modules, resources: opts.resources });
  const gateway = new Gateway({
    scheduler: opts.scheduler,
    host: opts.host,
    port: opts.port,
    ...(opts.workerHost !== undefined ? { workerHost: opts.workerHost } : {}),
    ...(opts.tlsCert !== undefined ? { tls: { cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey!) } } : {}),
    assets,
    log: (level, message) => log(`[dask-wasm gateway] ${level}: ${message}`),
  });
  const url = await gateway.start();
  log(`dask-wasm gateway for ${opts.scheduler}`);
  log(`volunteer page at: ${url}/`);
  log(`allowed modules: ${modules.map((m) => path.basename(m)).join(", ") || "none (Wasm modules only)"}; resources: ${JSON.stringify(opts.resources)}`);
  let closing = false;
  for (const sig of SIGNALS) {
    process.on(sig, () => {
      if (closing) process.exit(1);
      closing = true;
      log(`dask-wasm: received ${sig}; closing the gateway`);
      void gateway.close().then(() => process.exit(0));
    });
  }
}

async function main(argv: string[]): Promise<void> {
  process.on("uncaughtException", (error) => fail(error, 1));
  process.on("unhandledRejection", (error) => fail(error, 1));
  let parsed;
  try {
    parsed = parseArgs(argv, systemInfo());
  } catch (error) {
    // Usage errors exit 2, as click (dask-worker) and commander do.
    if (error instanceof ConfigError) fail(error, 2);
    throw error;
  }
  if (parsed.command === "print") {
    process.stdout.write(parsed.text);
    return;
  }
  if (parsed.command === "edge-bundle") {
    try {
      const { bundleEdge } = await import("../gateway/bundle.node.ts");
      const o = parsed.options;
      const file = await bundleEdge({ modules: resolveModules(o.modules), wasmModules: resolveModules(o.wasm), resources: o.resources, outDir: o.out });
      log(`edge worker bundle: ${file}`);
    } catch (error) {
      fail(error, error instanceof ConfigError ? 2 : 1);
    }
    return;
  }
  if (parsed.command === "gateway") {
    // It relays bytes only: no task memory to trim, so no re-exec.
    try {
      await runGateway(parsed.options);
    } catch (error) {
      fail(error, error instanceof ConfigError ? 2 : 1);
    }
    return;
  }
  if (process.env["MALLOC_TRIM_THRESHOLD_"] === undefined && process.env[CHILD_MARK] !== "1") {
    reexec();
    return;
  }
  try {
    await runWorker(parsed.options);
  } catch (error) {
    fail(error, error instanceof ConfigError ? 2 : 1);
  }
}

void main(process.argv.slice(2));
