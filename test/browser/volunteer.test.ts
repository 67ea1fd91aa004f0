// LIVE (issue 5, Must-shows 1, 2, 4, 5): three headless Chromium tabs (Debian's /usr/bin/chromium
// via playwright-core) open the page of a real `dask-wasm gateway` and become workers of a real
// Debian dask-scheduler, next to a Python dask-worker. test/python/browser_job.py drives the job
// in phases; this file acts on the tabs between them (see that script's docstring):
// - A: 300 Wasm tasks on the tabs; while the client holds them, each page's "Results held" and
//   "Tasks done" are compared with has_what and who_has, and a screenshot is written to
//   test-output/browser/volunteer.png;
// - B: a Python task consumes a tab's data, a tab's task consumes the Python worker's data;
// - C: shipped source is refused with DASK_ERR_SOURCE_NOT_ALLOWED, and the same tab runs on;
// - D: tab c is closed while the job is unfinished (wave 2 waits on a gate the test opens only
//   after the close): the scheduler removes it, the gateway frees its address (not in /status,
//   TCP connect refused), and every result of the job is still correct.
// Expected values are recomputed here from the inputs the script records.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VolunteerStatus } from "../../src/browser/protocol.ts";
import { REPO } from "../helpers/env.ts";
import { startScheduler, startPythonWorker, type Scheduler, type PythonWorker } from "../helpers/dask.ts";
import { startClientScript, stopEverything, TASKS_WASM } from "../helpers/wasm-worker.ts";
import { startGateway, stopGateways, type GatewayProcess, type GatewayStatus } from "../helpers/gateway.ts";
import { launchBrowser, closeBrowsers, type Tab } from "../helpers/browser.ts";

const OUT_DIR = join(REPO, "test-output/browser");
const SCREENSHOT = join(OUT_DIR, "volunteer.png");
const N_WASM = 300;
const N_WAVE = 150;

let scheduler: Scheduler;
let py: PythonWorker;
let gateway: GatewayProcess;
let tabs: Tab[];
let addresses: string[];
let syncDir: string;
let result: Record<string, unknown>;
/** Phase A, as the script printed it: per tab, len(has_what) and tasks attributed by who_has. */
let holdA: { has_what: Record<string, number>; ran: Record<string, number> };
/** Phase A, each page's status once it shows the scheduler's counts (or the last one seen). */
const pageA = new Map<string, VolunteerStatus>();
/** Phase A, the text of each page's "Tasks done" and "Results held" cells, read with that status. */
const textA = new Map<string, { state: string; tasksDone: string; keysHeld: string }>();
/** Phase D facts observed from this side. */
let closedAddress = "";
let tabCDoneBefore = 0;
let tabCDoneAtClose = 0;
let statusAfterClose: GatewayStatus;
let connectAfterClose = "";

/** "ECONNREFUSED" if nothing listens at tcp://host:port, "connected" if something does. */
function tryConnect(address: string): Promise<string> {
  const u = new URL(address.replace(/^tcp:/, "http:"));
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) });
    s.once("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

before(async () => {
  assert.ok(existsSync(TASKS_WASM), `${TASKS_WASM} is missing (scripts/dev.sh ensure_wasm builds it)`);
  syncDir = mkdtempSync(join(tmpdir(), "dask-wasm-browser-"));
  // No Active Memory Manager: it drops replicas (the broadcast module) on its own schedule, and
  // the page/scheduler count comparison needs has_what to hold still while the client waits.
  scheduler = await startScheduler({ env: { DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START: "False" } });
  [py, gateway] = await Promise.all([startPythonWorker(scheduler.address, { name: "py", resources: { py: 1 } }), startGateway(scheduler.address)]);
  const browser = await launchBrowser();
  tabs = await Promise.all(["tab-a", "tab-b", "tab-c"].map((name) => browser.openTab(gateway.url, name)));
  addresses = await Promise.all(tabs.map(async (t) => (await t.status()).address));

  const { proc, result: done } = await startClientScript("browser_job.py", {
    scheduler: scheduler.address,
    tabs: addresses,
    py: py.address,
    wasm_path: TASKS_WASM,
    n_wasm: N_WASM,
    n_wave: N_WAVE,
    sync_dir: syncDir,
  });
  // Whatever fails below, the script's own failure (with its log) is the more useful message.
  done.catch(() => {});
  const step = async <T>(what: Promise<T>): Promise<T> => {
    try {
      return await Promise.race([what, done.then(() => Promise.reject(new Error("browser_job.py finished early")))]);
    } catch (error) {
      // What each tab and the gateway saw, for the failure message.
      const tabsNow = await Promise.all(tabs.map(async (t) => `${t.name}: ${t.page.isClosed() ? "closed" : JSON.stringify(await t.status().catch((e: Error) => e.message))}\n${t.log.slice(-20).join("\n")}`));
      throw new Error(`${(error as Error).message}\n--- tabs\n${tabsNow.join("\n")}\n--- gateway\n${gateway.log().slice(-4000)}\n--- scheduler\n${scheduler.log().slice(-6000)}`);
    }
  };

  // A: the client holds 300 results; each page must show what the scheduler reports for it.
  holdA = JSON.parse((await step(proc.waitFor(/^HOLD-A (.*)$/m)))[1]!) as typeof holdA;
  for (const [i, tab] of tabs.entries()) {
    const addr = addresses[i]!;
    const want = { keys: holdA.has_what[addr], done: holdA.ran[addr] };
    try {
      pageA.set(addr, await tab.waitForStatus(`keysHeld ${want.keys}, tasksDone ${want.done}`, (s) => s.keysHeld === want.keys && s.tasksDone === want.done, 15_000));
    } catch {
      pageA.set(addr, await tab.status()); // the assertion below reports the difference
    }
    // What a volunteer reads: the cells' text (one evaluate, so one state of the page).
    textA.set(addr, await tab.page.evaluate(() => {
      const text = (id: string): string => document.getElementById(id)?.textContent ?? "";
      return { state: text("state"), tasksDone: text("tasksDone"), keysHeld: text("keysHeld") };
    }));
  }
  mkdirSync(OUT_DIR, { recursive: true });
  await tabs[0]!.page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`volunteer page screenshot: ${SCREENSHOT}`);
  writeFileSync(join(syncDir, "a-done"), "");

  // D: close tab c while the job cannot have finished (wave 2 waits for the gate file).
  await step(proc.waitFor(/^D-READY$/m));
  const tabC = tabs[2]!;
  tabCDoneBefore = (await tabC.status()).tasksDone;
  writeFileSync(join(syncDir, "d-go"), "");
  await step(proc.waitFor(/^D-SUBMITTED$/m));
  tabCDoneAtClose = (await tabC.waitForStatus("tab c runs a task of this job", (s) => s.tasksDone > tabCDoneBefore)).tasksDone;
  closedAddress = addresses[2]!;
  await tabC.page.close();
  writeFileSync(join(syncDir, "closed"), closedAddress);
  await step(proc.waitFor(/^REMOVED$/m, 90_000));
  statusAfterClose = await gateway.status();
  connectAfterClose = await tryConnect(closedAddress);
  writeFileSync(join(syncDir, "gate"), "");
  result = await done;
});

after(async () => {
  await closeBrowsers();
  await stopGateways();
  await stopEverything();
  if (syncDir) rmSync(syncDir, { recursive: true, force: true });
});

test("1. three tabs are workers of the scheduler, named, with resources browser=1 and wasm=1", () => {
  const workers = result.workers as Record<string, { name: string; nthreads: number; resources: Record<string, number> }>;
  for (const [i, addr] of addresses.entries()) {
    const w = workers[addr];
    assert.ok(w, `scheduler_info lists ${addr}: ${JSON.stringify(workers)}`);
    assert.equal(w.name, tabs[i]!.name);
    assert.equal(w.resources.browser, 1);
    assert.equal(w.resources.wasm, 1);
    assert.equal(w.nthreads, 1);
  }
  assert.equal(workers[py.address]?.resources.browser, undefined, "the Python worker advertises no browser resource");
});

test("1. 300 Wasm add tasks all return a + b, and every tab ran some", () => {
  const wasm = result.wasm as Array<[number, number, number, string[]]>;
  assert.equal(wasm.length, N_WASM);
  const perTab = new Map<string, number>();
  for (const [a, b, got, holders] of wasm) {
    assert.equal(got, a + b, `add(${a}, ${b})`);
    assert.equal(holders.length, 1, `one holder of add(${a}, ${b}): ${holders}`);
    assert.ok(addresses.includes(holders[0]!), `add(${a}, ${b}) ran on a tab, not ${holders[0]}`);
    perTab.set(holders[0]!, (perTab.get(holders[0]!) ?? 0) + 1);
  }
  for (const addr of addresses) assert.ok((perTab.get(addr) ?? 0) > 0, `tab ${addr} ran some Wasm tasks: ${JSON.stringify([...perTab])}`);
});

test("1. a Python task consumes a tab's result, and a tab's task consumes the Python worker's", () => {
  const cross = result.cross as Record<string, { input: number; x?: number; y?: number; result: number; x_ran?: string[]; y_ran?: string[]; ran: string[] }>;
  const t2p = cross.tab_to_py!;
  assert.equal(t2p.x, t2p.input + 1);
  assert.equal(t2p.result, (t2p.input + 1) * 2);
  assert.ok(t2p.x_ran!.includes(addresses[0]!), `inc ran on tab a: ${t2p.x_ran}`);
  assert.deepEqual(t2p.ran, [py.address]);
  const p2t = cross.py_to_tab!;
  assert.equal(p2t.y, p2t.input * 3);
  assert.equal(p2t.result, p2t.input * 3 * 2);
  assert.ok(p2t.y_ran!.includes(py.address), `py_triple ran on the Python worker: ${p2t.y_ran}`);
  assert.deepEqual(p2t.ran, [addresses[1]!]);
});

test("4. the page shows the scheduler's counts for its worker; a screenshot was written", () => {
  for (const addr of addresses) {
    const page = pageA.get(addr)!;
    assert.equal(page.address, addr);
    assert.equal(page.keysHeld, holdA.has_what[addr], `Results held on ${addr} vs len(has_what)`);
    assert.equal(page.tasksDone, holdA.ran[addr], `Tasks done on ${addr} vs tasks who_has attributes to it`);
  }
  // The module (scattered to every tab) is held by each, besides its results.
  const hasWhat = result.has_what_a as Record<string, string[]>;
  for (const addr of addresses) assert.ok(hasWhat[addr]!.includes(result.module_key as string), `module on ${addr}`);
  assert.ok(existsSync(SCREENSHOT), SCREENSHOT);
});

test("4. the page's text shows those counts (the 'Results held' and 'Tasks done' cells)", () => {
  for (const addr of addresses) {
    const text = textA.get(addr)!;
    assert.equal(text.keysHeld, String(holdA.has_what[addr]), `#keysHeld on ${addr}`);
    assert.equal(text.tasksDone, String(holdA.ran[addr]), `#tasksDone on ${addr}`);
    assert.equal(text.state, "running");
  }
});

test("5. shipped source on a tab fails with DASK_ERR_SOURCE_NOT_ALLOWED; the tab then runs a task", () => {
  const source = result.source as { value: unknown; error: string | null };
  assert.equal(source.value, null);
  assert.match(source.error ?? "", /DASK_ERR_SOURCE_NOT_ALLOWED/);
  const next = result.after_source as { input: number; result: number; ran: string[] };
  assert.equal(next.result, next.input + 1);
  assert.deepEqual(next.ran, [addresses[1]!]);
});

test("2. closing a tab mid-job: the scheduler removes it, the gateway frees its address", () => {
  assert.ok(tabCDoneAtClose > tabCDoneBefore, "tab c ran tasks of the job before it was closed");
  assert.equal(result.wave2_done_at_close, 0, "the job was unfinished when the tab closed");
  const after = result.workers_after_close as Record<string, unknown>;
  assert.equal(after[closedAddress], undefined);
  for (const addr of addresses.slice(0, 2)) assert.ok(after[addr], `${addr} still a worker`);
  assert.ok(!statusAfterClose.workers.some((w) => w.address === closedAddress), `gateway /status: ${JSON.stringify(statusAfterClose)}`);
  assert.equal(statusAfterClose.workers.length, 2);
  assert.equal(connectAfterClose, "ECONNREFUSED");
});

test("2. ... and the job still completes with every result correct, on the remaining tabs", () => {
  const wave1 = result.wave1 as Array<[number, number, string[]]>;
  const wave2 = result.wave2 as Array<[number, number, string[]]>;
  assert.equal(wave1.length, N_WAVE);
  assert.equal(wave2.length, N_WAVE);
  for (const [i, got, holders] of wave1) {
    assert.equal(got, i + 1, `inc(${i})`);
    assert.ok(!holders.includes(closedAddress) && holders.length > 0, `inc(${i}) held by ${holders}`);
  }
  for (const [i, got, holders] of wave2) {
    assert.equal(got, i, `add(${i}, gate)`);
    assert.ok(!holders.includes(closedAddress) && holders.length > 0, `add(${i}, gate) held by ${holders}`);
  }
});
