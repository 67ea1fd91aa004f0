// CLI parsing (src/cli/args.ts): flags and defaults of `dask-wasm worker`, byte sizes and
// resources checked against Debian's dask itself (dask.utils.parse_bytes, dask-worker's
// --resources rule, distributed's parse_memory_limit), and every bad flag -> ConfigError naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { readFileSync } from "node:fs";
import { VERSION, parseArgs, parseBytes, parseHostPort, parseMemoryLimit, parseResources, type SystemInfo } from "../../src/cli/args.ts";
import { runPython } from "../helpers/env.ts";

const SYS: SystemInfo = { cpuCount: 4, memoryLimit: 16_000_000_000 };

function worker(...flags: string[]) {
  const r = parseArgs(["worker", "tcp://127.0.0.1:8786", ...flags], SYS);
  assert.equal(r.command, "worker");
  return (r as Extract<typeof r, { command: "worker" }>).options;
}

test("defaults mirror dask-worker: CPU-count threads, auto memory, wasm=nthreads, loopback dashboard", () => {
  const o = worker();
  assert.equal(o.scheduler, "tcp://127.0.0.1:8786");
  assert.equal(o.nthreads, SYS.cpuCount);
  assert.equal(o.memoryLimit, SYS.memoryLimit); // auto with nthreads == cpus: all of it
  assert.deepEqual(o.resources, { wasm: SYS.cpuCount });
  assert.deepEqual(o.dashboardAddress, { host: "127.0.0.1", port: 0 });
  assert.deepEqual(o.modules, []);
  assert.equal(o.allowSource, false);
  assert.equal(o.name, undefined);
  assert.equal(o.listenAddress, undefined);
});

test("every flag of the contract reaches the options", () => {
  const o = worker(
    "--nthreads", "3", "--name", "w-1", "--memory-limit", "2GB", "--resources", "GPU=1, MEM=10e9",
    "--local-directory", "/tmp/x", "--listen-address", "tcp://127.0.0.1:0", "--contact-address", "10.1.2.3:9000",
    "--dashboard-address", ":8787", "--module", "./a.js", "--module", "b.js", "--allow-source",
  );
  assert.deepEqual(o, {
    scheduler: "tcp://127.0.0.1:8786", nthreads: 3, name: "w-1", memoryLimit: 2e9,
    resources: { wasm: 3, GPU: 1, MEM: 1e10 }, localDirectory: "/tmp/x", listenAddress: "tcp://127.0.0.1:0",
    contactAddress: "tcp://10.1.2.3:9000", dashboardAddress: { host: "", port: 8787 },
    modules: ["./a.js", "b.js"], allowSource: true,
  });
});

test("a bare scheduler host:port gets tcp://; --resources may override wasm; --no-dashboard", () => {
  assert.equal(parseArgs(["worker", "localhost:8786"], SYS).command, "worker");
  assert.deepEqual(worker("--nthreads", "2", "--resources", "wasm=8").resources, { wasm: 8 });
  assert.equal(worker("--no-dashboard").dashboardAddress, undefined);
});

test("--help, --version and no command print instead of running", () => {
  const help = parseArgs(["worker", "--help"], SYS);
  assert.equal(help.command, "print");
  for (const flag of ["--nthreads", "--name", "--memory-limit", "--resources", "--local-directory", "--listen-address", "--contact-address", "--dashboard-address", "--module", "--allow-source"]) {
    assert.match((help as { text: string }).text, new RegExp(flag));
  }
  // --version is the package's version (kept in step with package.json by this check).
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(VERSION, pkg.version);
  assert.deepEqual(parseArgs(["--version"], SYS), { command: "print", text: `${pkg.version}\n` });
  assert.match((parseArgs([], SYS) as { text: string }).text, /worker/);
});

test("each bad flag is a ConfigError whose message starts with the flag", () => {
  const cases: Array<[string[], string]> = [
    [["--nthreads", "0"], "--nthreads"],
    [["--nthreads", "two"], "--nthreads"],
    [["--nthreads", "1.5"], "--nthreads"],
    [["--nthreads"], "--nthreads"],
    [["--memory-limit", "5 foos"], "--memory-limit"],
    [["--memory-limit", "-1"], "--memory-limit"],
    [["--memory-limit", "x1GB"], "--memory-limit"],
    [["--resources", "GPU"], "--resources"],
    [["--resources", "GPU=lots"], "--resources"],
    [["--resources", "=2"], "--resources"],
    [["--resources", "GPU=-1"], "--resources"],
    [["--listen-address", "udp://1.2.3.4:1"], "--listen-address"],
    [["--listen-address", "nohostport"], "--listen-address"],
    [["--contact-address", "tcp://h:0"], "--contact-address"],
    [["--contact-address", "tcp://h:70000"], "--contact-address"],
    [["--dashboard-address", "h:port"], "--dashboard-address"],
    [["--dashboard-address", "h:99999"], "--dashboard-address"],
    [["--name", ""], "--name"],
    [["--module", ""], "--module"],
    [["--bogus"], "--bogus"],
    [["--allow-source=yes"], "--allow-source"],
  ];
  for (const [flags, name] of cases) {
    assert.throws(() => worker(...flags), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${flags.join(" ")}: ${String(e)}`);
      assert.equal((e as ConfigError).code, "DASK_ERR_CONFIG");
      assert.ok((e as Error).message.startsWith(name), `${flags.join(" ")} -> ${(e as Error).message}`);
      return true;
    });
  }
  for (const bad of [[], ["tcp://h:0"], ["ws://h:1"], ["h"]]) {
    assert.throws(() => parseArgs(["worker", ...bad], SYS), (e: unknown) => e instanceof ConfigError && /^ADDRESS/.test((e as Error).message));
  }
  assert.throws(() => parseArgs(["wrker", "h:1"], SYS), ConfigError);
});

test("parseBytes agrees with dask.utils.parse_bytes (Debian's dask)", () => {
  const inputs = ["100", "100 MB", "100M", "5kB", "5.4 kB", "1kiB", "1e6", "1e6 kB", "MB", "2GB", "2gib", "0", "1.5 TB", "3 b", ".5k", "7PiB", "12Mi"];
  const python = JSON.parse(runPython(
    "import json,sys\nfrom dask.utils import parse_bytes\nprint(json.dumps([parse_bytes(s) for s in json.loads(sys.stdin.read())]))",
    JSON.stringify(inputs),
  ).toString()) as number[];
  assert.deepEqual(inputs.map((s) => parseBytes(s)), python);
  for (const bad of ["5 foos", "abc1", "1..2MB", "--1"]) {
    const pyFails = runPython(`from dask.utils import parse_bytes\ntry:\n    parse_bytes(${JSON.stringify(bad)}); print("ok")\nexcept ValueError: print("err")`).toString().trim();
    assert.equal(pyFails, "err", bad);
    assert.throws(() => parseBytes(bad), ConfigError, bad);
  }
});

test("parseMemoryLimit agrees with distributed's parse_memory_limit for a pinned system", () => {
  const inputs: Array<[string, number]> = [["auto", 1], ["auto", 2], ["auto", 8], ["0", 1], ["0.5", 1], ["1", 1], ["2GB", 1], ["64GB", 1], ["123456789", 1], ["1e9", 1]];
  const code = [
    "import json, sys, logging",
    "import distributed.worker_memory as wm",
    "from distributed import system",
    `system.MEMORY_LIMIT = ${SYS.memoryLimit}`,
    "out = [wm.parse_memory_limit(s, n, total_cores=" + SYS.cpuCount + ", logger=logging.getLogger('x')) for s, n in json.loads(sys.stdin.read())]",
    "print(json.dumps(out))",
  ].join("\n");
  const python = JSON.parse(runPython(code, JSON.stringify(inputs)).toString()) as Array<number | null>;
  assert.deepEqual(inputs.map(([s, n]) => parseMemoryLimit(s, n, SYS) ?? null), python);
});

test("parseResources follows dask-worker's rule (commas or blanks, float values)", () => {
  const inputs = ["GPU=2 MEM=10e9", "a=1,b=2.5", "  x=0  ", "wasm=4,GPU=1 TPU=3"];
  const python = JSON.parse(runPython(
    "import json,sys\nout=[]\nfor r in json.loads(sys.stdin.read()):\n    out.append({k: float(v) for k, v in (p.split('=') for p in r.replace(',', ' ').split())})\nprint(json.dumps(out))",
    JSON.stringify(inputs),
  ).toString()) as Array<Record<string, number>>;
  assert.deepEqual(inputs.map(parseResources), python);
});

test("parseHostPort: host:port, :port, port, [v6]:port", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:0", "--x"), { host: "127.0.0.1", port: 0 });
  assert.deepEqual(parseHostPort(":8787", "--x"), { host: "", port: 8787 });
  assert.deepEqual(parseHostPort("8787", "--x"), { host: "", port: 8787 });
  assert.deepEqual(parseHostPort("[::1]:9", "--x"), { host: "::1", port: 9 });
});
