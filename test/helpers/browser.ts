// Live-test helper: Debian's Chromium (/usr/bin/chromium) driven by playwright-core, headless, with
// tabs opened on the gateway's volunteer page (`?name=…` names each tab's worker). A tab is ready
// when the page's `globalThis.daskWasmStatus.state` (src/browser/page.ts) is "running".
//
// Must not: sleep (waits are page.waitForFunction with a deadline), or leave a browser behind
// (every browser is tracked; `closeBrowsers()` in `after()` closes what is still open, and each
// one's temporary profile directory is removed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { VolunteerStatus } from "../../src/browser/protocol.ts";

export const CHROMIUM = process.env.DASK_WASM_TEST_CHROMIUM ?? "/usr/bin/chromium";
/** Overall limit for a tab to load the page, compile the Wasm and register (2-core box: ~1-5 s). */
const READY_TIMEOUT_MS = 60_000;

const ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Tabs that are not in front must keep their timers and workers at full speed.
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

export interface Tab {
  readonly name: string;
  readonly page: Page;
  /** Console lines and page errors of this tab, for failure messages. */
  readonly log: string[];
  /** The page's latest VolunteerStatus. */
  status(): Promise<VolunteerStatus>;
  /** Waits until `predicate(status)` holds (checked in the page), with a deadline. */
  waitForStatus(what: string, predicate: (s: VolunteerStatus) => boolean, timeoutMs?: number): Promise<VolunteerStatus>;
}

export interface VolunteerBrowser {
  readonly browser: Browser;
  readonly context: BrowserContext;
  /** Opens a tab on `url?name=<name>` and resolves once its worker is running. */
  openTab(url: string, name: string): Promise<Tab>;
  close(): Promise<void>;
}

const open = new Set<VolunteerBrowser>();

/** Launches a fresh headless Chromium (its own temporary profile). */
export async function launchBrowser(): Promise<VolunteerBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "dask-wasm-chromium-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 900, height: 760 } });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  let closed = false;
  const handle: VolunteerBrowser = {
    browser: context.browser()!,
    context,
    async openTab(url, name) {
      const page = await context.newPage();
      const log: string[] = [];
      page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
      page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
      const target = new URL(url);
      target.searchParams.set("name", name);
      const status = async (): Promise<VolunteerStatus> => {
        const s = await page.evaluate(() => (globalThis as { daskWasmStatus?: unknown }).daskWasmStatus ?? null);
        if (!s) throw new Error(`tab ${name} has no daskWasmStatus yet`);
        return s as VolunteerStatus;
      };
      const tab: Tab = {
        name,
        page,
        log,
        status,
        async waitForStatus(what, predicate, timeoutMs = READY_TIMEOUT_MS) {
          // Polls from Node (the predicate is a Node closure), each poll one evaluate; deadline-bound.
          const deadline = Date.now() + timeoutMs;
          let last: unknown = null;
          for (;;) {
            last = await page.evaluate(() => (globalThis as { daskWasmStatus?: unknown }).daskWasmStatus ?? null);
            if (last && predicate(last as VolunteerStatus)) return last as VolunteerStatus;
            if (last && (last as VolunteerStatus).state === "failed") throw new Error(`tab ${name} failed while waiting for ${what}: ${JSON.stringify(last)}\n${log.join("\n")}`);
            if (Date.now() > deadline) throw new Error(`tab ${name}: ${what} not reached within ${timeoutMs} ms; last status ${JSON.stringify(last)}\n${log.join("\n")}`);
            // Wait for the page's next status post (it posts on change and every 250 ms), not a fixed time.
            await page.waitForFunction((prev) => JSON.stringify((globalThis as { daskWasmStatus?: unknown }).daskWasmStatus ?? null) !== prev, JSON.stringify(last), { timeout: Math.max(1, deadline - Date.now()), polling: 50 }).catch(() => {});
          }
        },
      };
      await page.goto(target.href);
      await tab.waitForStatus("state running", (s) => s.state === "running");
      return tab;
    },
    async close() {
      if (closed) return;
      closed = true;
      open.delete(handle);
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
  open.add(handle);
  return handle;
}

/** Closes every browser launched here that is still open. For `after()` hooks. */
export async function closeBrowsers(): Promise<void> {
  await Promise.all([...open].map((b) => b.close()));
}
