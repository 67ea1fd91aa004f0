// Live-test helper for the client must-show tests: a dask-scheduler (of a DaskFlavor), N dask-wasm workers
// (child processes, test/helpers/wasm-worker.ts) loading examples/tasks.js and
// test/fixtures/mustshow.js, and a TypeScript Client connected to it. `stop()` closes every
// client it made, then every process. Must not: sleep or bind anything but 127.0.0.1.
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "../../src/client/client.ts";
import { startScheduler, type DaskFlavor, type Scheduler } from "./dask.ts";
import { startWasmWorker, stopEverything, TASKS_JS, type WasmWorker, type WasmWorkerOptions } from "./wasm-worker.ts";
import { REPO } from "./env.ts";

export const MUSTSHOW_JS = REPO + "test/fixtures/mustshow.js";

export interface TestCluster {
  scheduler: Scheduler;
  workers: WasmWorker[];
  client: Client;
  /** Another client on the same scheduler (closed by stop()). */
  newClient(opts?: Parameters<typeof Client.connect>[1]): Promise<Client>;
  /** A fresh file path in a per-cluster temporary directory (task counters). */
  tempFile(name: string): string;
  /** Lines in a counter file (0 when it does not exist). */
  lines(path: string): number;
  stop(): Promise<void>;
}

export async function startTestCluster(opts: {
  workers: Array<Omit<WasmWorkerOptions, "modules">>;
  schedulerEnv?: Record<string, string>;
  clientOptions?: Parameters<typeof Client.connect>[1];
  /** Which dask runs the scheduler (default 2022.12.1). */
  flavor?: DaskFlavor;
}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "dask-wasm-mustshow-"));
  const clients: Client[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await stopEverything();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The active memory manager may drop replicas at moments we do not control: off.
    const scheduler = await startScheduler({ env: { DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START: "False", ...opts.schedulerEnv }, flavor: opts.flavor });
    const workers: WasmWorker[] = [];
    for (const w of opts.workers) workers.push(await startWasmWorker(scheduler.address, { ...w, modules: [TASKS_JS, MUSTSHOW_JS] }));
    const newClient = async (o = opts.clientOptions): Promise<Client> => {
      const c = await Client.connect(scheduler.address, o);
      clients.push(c);
      return c;
    };
    const client = await newClient();
    return {
      scheduler, workers, client, newClient, stop,
      tempFile: (name) => join(dir, name),
      lines: (path) => (existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean).length : 0),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
