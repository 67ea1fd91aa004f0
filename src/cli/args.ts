// Command-line parsing for `dask-wasm worker ADDRESS [flags]`: argv in, validated options out.
// Pure: no process, no env, no file system, no exit. Facts about the machine (CPU count, memory)
// arrive as an argument so tests can pin them; main.ts supplies the real ones and does all IO.
// Flag names, defaults and value syntax mirror Debian's `dask-worker` (distributed 2022.12.1,
// distributed/cli/dask_worker.py) so a user can swap one command for the other. Every bad value
// is reported once, as a ConfigError whose message starts with the flag's name.
import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "../errors.ts";

/** What the parser needs to know about the machine (dask: `CPU_COUNT`, `system.MEMORY_LIMIT`). */
export interface SystemInfo {
  cpuCount: number;
  /** min(total RAM, cgroup limit), in bytes, as distributed/system.py computes it. */
  memoryLimit: number;
}

/** A host and port to listen on; host "" means every interface (dask's ":8787"). */
export interface HostPort {
  host: string;
  port: number;
}

/** Validated `worker` options. Field names follow the Worker API of issue 3. */
export interface WorkerCliOptions {
  scheduler: string;
  nthreads: number;
  name?: string;
  /** Bytes; undefined = no memory management (dask's `--memory-limit 0`). */
  memoryLimit?: number;
  resources: Record<string, number>;
  localDirectory?: string;
  listenAddress?: string;
  contactAddress?: string;
  /** undefined with `--no-dashboard`. */
  dashboardAddress?: HostPort;
  /** As given on the command line; main.ts resolves them against the working directory. */
  modules: string[];
  allowSource: boolean;
}

/** Validated `gateway` options (src/gateway/gateway.node.ts GatewayOptions + the page's modules). */
export interface GatewayCliOptions {
  scheduler: string;
  host: string;
  port: number;
  workerHost?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** ES modules bundled into the volunteer page: the exports tabs may run. */
  modules: string[];
  /** Resources every tab advertises (default {wasm: 1, browser: 1}). */
  resources: Record<string, number>;
}

export type ParsedCommand =
  | { command: "worker"; options: WorkerCliOptions }
  | { command: "gateway"; options: GatewayCliOptions }
  | { command: "edge-bundle"; options: { modules: string[]; wasm: string[]; resources: Record<string, number>; out: string } }
  /** --help / --version / no subcommand: text to print on stdout, then exit 0. */
  | { command: "print"; text: string };

/** Default dashboard address: loopback and a free port (dask-worker's own default is ":0"). */
export const DEFAULT_DASHBOARD = "127.0.0.1:0";
export const VERSION = "0.1.0";

/** dask.utils.byte_sizes (2022.12.1), keys lower-case. */
const BYTE_SIZES: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, p: 1e15, pb: 1e15,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30,
  ti: 2 ** 40, tib: 2 ** 40, pi: 2 ** 50, pib: 2 ** 50,
};

/** A float the way Python's float() reads it: decimal or exponent, no hex, no trailing junk. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * dask.utils.parse_bytes: "100" -> 100, "5.4 kB" -> 5400, "1kiB" -> 1024, "1e6 kB" -> 1e9,
 * "MB" -> 1e6. Spaces are ignored; the unit is the trailing run of letters. Truncates toward
 * zero like Python's int(). Throws ConfigError naming `flag`.
 */
export function parseBytes(text: string, flag = "--memory-limit"): number {
  const s0 = text.replace(/ /g, "");
  // "MB" alone means one MB (Python prepends "1" when there is no digit at all).
  const s = /\d/.test(s0) ? s0 : "1" + s0;
  let i = s.length;
  while (i > 0 && /[a-z]/i.test(s[i - 1]!)) i--;
  const prefix = s.slice(0, i);
  const suffix = s.slice(i).toLowerCase();
  if (!NUMBER.test(prefix)) throw new ConfigError(`${flag}: could not interpret '${prefix}' as a number in '${text}'`);
  const multiplier = BYTE_SIZES[suffix];
  if (multiplier === undefined) throw new ConfigError(`${flag}: could not interpret '${s.slice(i)}' as a byte unit in '${text}'`);
  const n = Math.trunc(Number(prefix) * multiplier);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`${flag}: '${text}' is not a non-negative byte count`);
  return n;
}

/**
 * distributed.worker_memory.parse_memory_limit: "auto" = system memory × min(1, nthreads/cores);
 * a number ≤ 1 is a fraction of system memory; otherwise bytes (parse_bytes syntax). 0 means no
 * limit (undefined). A limit above the system's is clamped to it, as dask does (it warns).
 */
export function parseMemoryLimit(text: string, nthreads: number, sys: SystemInfo): number | undefined {
  let limit: number;
  const t = text.trim();
  if (t === "auto") {
    limit = Math.trunc(sys.memoryLimit * Math.min(1, nthreads / sys.cpuCount));
  } else if (NUMBER.test(t)) {
    const f = Number(t);
    if (f < 0) throw new ConfigError(`--memory-limit: '${text}' is negative`);
    limit = f <= 1 ? Math.trunc(f * sys.memoryLimit) : Math.trunc(f);
  } else {
    limit = parseBytes(t, "--memory-limit");
  }
  if (limit === 0) return undefined;
  return Math.min(limit, sys.memoryLimit);
}

/**
 * dask-worker's --resources: "GPU=2 MEM=10e9" (commas work as separators too) -> {GPU: 2,
 * MEM: 1e10}. Values are Python floats; names are anything without "=" or blanks.
 */
export function parseResources(text: string): Record<string, number> {
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const pair of text.replace(/,/g, " ").split(/\s+/).filter(Boolean)) {
    const parts = pair.split("=");
    if (parts.length !== 2 || parts[0] === "") throw new ConfigError(`--resources: '${pair}' is not NAME=NUMBER`);
    const [name, value] = parts as [string, string];
    if (!NUMBER.test(value) && !/^[+-]?inf(inity)?$/i.test(value)) throw new ConfigError(`--resources: '${value}' (for ${name}) is not a number`);
    const n = /inf/i.test(value) ? (value.startsWith("-") ? -Infinity : Infinity) : Number(value);
    if (n < 0) throw new ConfigError(`--resources: ${name}=${value} is negative`);
    out[name] = n;
  }
  // A plain object (not null-prototype) for callers that spread or JSON it.
  return { ...out };
}

/** "host:port", ":port" (all interfaces) or "port"; IPv6 as "[::1]:port". */
export function parseHostPort(text: string, flag: string): HostPort {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (!m) throw new ConfigError(`${flag}: '${text}' is not HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${flag}: port ${port} is out of range`);
  return { host: m[1] ?? m[2] ?? "", port };
}

/**
 * A comm address: "tcp://host:port". A bare "host:port" gets "tcp://", as dask's
 * `normalize_address` does. Only tcp is served by the Node worker.
 */
export function parseCommAddress(text: string, flag: string, allowPortZero = true): string {
  const withScheme = text.includes("://") ? text : `tcp://${text}`;
  const m = /^([a-z]+):\/\/(\[[^\]]*\]|[^:/]*):(\d+)$/.exec(withScheme);
  if (!m) throw new ConfigError(`${flag}: '${text}' is not tcp://HOST:PORT`);
  if (m[1] !== "tcp") throw new ConfigError(`${flag}: protocol '${m[1]}' is not supported (tcp only)`);
  const port = Number(m[3]);
  if (port > 65535 || (!allowPortZero && port === 0)) throw new ConfigError(`${flag}: port ${port} is out of range`);
  if (m[2] === "") throw new ConfigError(`${flag}: '${text}' has no host`);
  return withScheme;
}

function positiveInt(text: string, flag: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new ConfigError(`${flag}: '${text}' is not a positive integer`);
  return Number(text);
}

/** Raw values as commander hands them over (all strings; repeatables as arrays). */
interface RawWorkerFlags {
  nthreads?: string;
  name?: string;
  memoryLimit: string;
  resources?: string;
  localDirectory?: string;
  listenAddress?: string;
  contactAddress?: string;
  dashboardAddress: string;
  dashboard: boolean;
  module: string[];
  allowSource: boolean;
}

/** Raw flags -> validated options. Separate from commander so the rules read in one place. */
export function validateWorkerFlags(scheduler: string, raw: RawWorkerFlags, sys: SystemInfo): WorkerCliOptions {
  // dask-worker without --nworkers: one process with CPU_COUNT threads.
  const nthreads = raw.nthreads === undefined ? Math.max(1, sys.cpuCount) : positiveInt(raw.nthreads, "--nthreads");
  // Issue 3: advertise wasm=nthreads so JS tasks (resources={"wasm": 1}) route here; --resources
  // adds to it, and may override it (e.g. "wasm=0" or "wasm=4").
  const resources = { wasm: nthreads, ...(raw.resources !== undefined ? parseResources(raw.resources) : {}) };
  if (raw.name !== undefined && raw.name.trim() === "") throw new ConfigError("--name: must not be empty");
  if (raw.localDirectory !== undefined && raw.localDirectory === "") throw new ConfigError("--local-directory: must not be empty");
  for (const m of raw.module) if (m === "") throw new ConfigError("--module: must not be empty");
  const opts: WorkerCliOptions = {
    scheduler: parseCommAddress(scheduler, "ADDRESS (scheduler)", false),
    nthreads,
    memoryLimit: parseMemoryLimit(raw.memoryLimit, nthreads, sys),
    resources,
    modules: [...raw.module],
    allowSource: raw.allowSource,
  };
  if (raw.name !== undefined) opts.name = raw.name;
  if (raw.localDirectory !== undefined) opts.localDirectory = raw.localDirectory;
  if (raw.listenAddress !== undefined) opts.listenAddress = parseCommAddress(raw.listenAddress, "--listen-address");
  if (raw.contactAddress !== undefined) opts.contactAddress = parseCommAddress(raw.contactAddress, "--contact-address", false);
  if (raw.dashboard) opts.dashboardAddress = parseHostPort(raw.dashboardAddress, "--dashboard-address");
  return opts;
}

/** commander's error ids -> our message prefix; the flag name is in commander's own text. */
function fromCommander(error: CommanderError): ConfigError {
  // commander's messages read "error: unknown option '--foo'" / "error: option '--nthreads <n>'
  // argument missing"; keep the flag-bearing text, drop the "error: " prefix.
  const text = error.message.replace(/^error:\s*/, "");
  const flag = /'(--?[\w-]+)/.exec(text)?.[1];
  if (error.code === "commander.missingArgument") return new ConfigError(`ADDRESS (scheduler): missing; usage: dask-wasm worker tcp://HOST:PORT [options]`);
  return new ConfigError(flag ? `${flag}: ${text}` : text);
}

/**
 * Parses argv without the node and script entries (`process.argv.slice(2)`). Never exits and
 * never prints: help and version come back as `{command: "print"}`, errors as ConfigError.
 */
export function parseArgs(argv: readonly string[], sys: SystemInfo): ParsedCommand {
  let printed = "";
  let result: ParsedCommand | undefined;
  const program = new Command("dask-wasm")
    .description("dask.distributed worker runtime in TypeScript + WebAssembly")
    .version(VERSION, "--version")
    .exitOverride()
    .configureOutput({ writeOut: (s) => (printed += s), writeErr: (s) => (printed += s) })
    .showSuggestionAfterError(true);
  program
    .command("worker")
    .description("Start a dask worker attached to the dask-scheduler at ADDRESS")
    .argument("<address>", "scheduler address, e.g. tcp://127.0.0.1:8786")
    .option("--nthreads <n>", "number of task threads (default: CPU count)")
    .option("--name <name>", "a unique name for this worker, like 'worker-1'")
    .option("--memory-limit <limit>", "bytes the worker may store before spilling: bytes, 5GB, 0.5 (fraction), 0 (none) or auto", "auto")
    .option("--resources <spec>", `resources for task constraints, like "GPU=2 MEM=10e9" (wasm=nthreads is added unless given)`)
    .option("--local-directory <dir>", "directory for spilled data")
    .option("--listen-address <address>", "address the worker binds, like tcp://127.0.0.1:0")
    .option("--contact-address <address>", "address the worker advertises to the scheduler and peers")
    .option("--dashboard-address <host:port>", "HTTP address for /health and /metrics", DEFAULT_DASHBOARD)
    .addOption(new Option("--no-dashboard", "do not serve /health and /metrics"))
    .option("--module <path>", "ES module whose exports tasks may name (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--allow-source", "run tasks shipped as JS source (fn.toString()); off by default", false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => (printed += s), writeErr: (s) => (printed += s) })
    .action((address: string, raw: RawWorkerFlags) => {
      result = { command: "worker", options: validateWorkerFlags(address, raw, sys) };
    });
  program
    .command("gateway")
    .description("Serve the volunteer page and carry browser tabs' and edge workers' connections to the scheduler")
    .requiredOption("--scheduler <address>", "scheduler address, e.g. tcp://127.0.0.1:8786")
    .option("--host <host>", "address the page and worker WebSockets are served on", "127.0.0.1")
    .option("--port <port>", "port of the page (0 = any free port)", "8790")
    .option("--worker-host <host>", "host the per-worker addresses bind (reachable by the scheduler and peers; default --host)")
    .option("--tls-cert <file>", "PEM certificate: serve https and wss")
    .option("--tls-key <file>", "PEM private key for --tls-cert")
    .option("--module <path>", "ES module bundled into the page; tabs may run its exports (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--resources <spec>", `resources every tab advertises, like "wasm=1 browser=1"`, "wasm=1 browser=1")
    .exitOverride()
    .configureOutput({ writeOut: (s) => (printed += s), writeErr: (s) => (printed += s) })
    .action((raw: { scheduler: string; host: string; port: string; workerHost?: string; tlsCert?: string; tlsKey?: string; module: string[]; resources: string }) => {
      const port = Number(raw.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--port: expected 0-65535, got '${raw.port}'`);
      if ((raw.tlsCert === undefined) !== (raw.tlsKey === undefined)) throw new ConfigError("--tls-cert and --tls-key go together");
      result = {
        command: "gateway",
        options: {
          scheduler: raw.scheduler.includes("://") ? raw.scheduler : `tcp://${raw.scheduler}`,
          host: raw.host,
          port,
          ...(raw.workerHost !== undefined ? { workerHost: raw.workerHost } : {}),
          ...(raw.tlsCert !== undefined ? { tlsCert: raw.tlsCert, tlsKey: raw.tlsKey! } : {}),
          modules: raw.module,
          resources: parseResources(raw.resources),
        },
      };
    });
  program
    .command("edge-bundle")
    .description("Bundle the workerd edge worker (src/edge/entry.ts) with its allowed modules, for edge/workerd.capnp")
    .option("--module <path>", "ES module bundled in; edge tasks may run its exports (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--wasm <path>", ".wasm deployed with the worker; tasks sending these bytes run it (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--resources <spec>", "resources the edge worker advertises", "wasm=1 edge=1")
    .option("--out <dir>", "output directory", "build/edge")
    .exitOverride()
    .configureOutput({ writeOut: (s) => (printed += s), writeErr: (s) => (printed += s) })
    .action((raw: { module: string[]; wasm: string[]; resources: string; out: string }) => {
      result = { command: "edge-bundle", options: { modules: raw.module, wasm: raw.wasm, resources: parseResources(raw.resources), out: raw.out } };
    });
  try {
    program.parse([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") {
        return { command: "print", text: printed };
      }
      throw fromCommander(error);
    }
    throw error;
  }
  if (result) return result;
  // No subcommand: show the help text, as `dask-worker` without arguments would show usage.
  return { command: "print", text: program.helpInformation() };
}
