// The gateway's HTTP side (src/gateway/gateway.node.ts) without a dask cluster: assets served
// with their content types and the page's security headers, 404/405, upgrades only on /worker,
// and TLS (--tls-cert/--tls-key): https for the page and /status, wss for a worker link, with a
// throwaway self-signed certificate made by openssl for 127.0.0.1. Nothing here OPENs a TCP
// connection, so the scheduler address is never dialled.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket as WsClient } from "ws";
import { Gateway, type GatewayAsset } from "../../src/gateway/gateway.node.ts";
import { GatewayLink } from "../../src/gateway/link.ts";
import type { WebSocketLike } from "../../src/comm/ws.ts";
import { ConfigError } from "../../src/errors.ts";

const UNUSED_SCHEDULER = "tcp://127.0.0.1:9";
const PAGE = "<!doctype html><title>volunteer</title>";
const WASM = Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0);
const assets = new Map<string, GatewayAsset>([
  ["/index.html", { body: PAGE, type: "text/html; charset=utf-8" }],
  ["/core.wasm", { body: WASM, type: "application/wasm" }],
]);

let plain: Gateway;
let tls: Gateway;
let certDir: string;
let cert: Buffer;

before(async () => {
  plain = new Gateway({ scheduler: UNUSED_SCHEDULER, assets, log: () => {} });
  await plain.start();
  certDir = mkdtempSync(join(tmpdir(), "dask-wasm-gw-tls-"));
  const r = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(certDir, "key.pem"), "-out", join(certDir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  cert = readFileSync(join(certDir, "cert.pem"));
  tls = new Gateway({ scheduler: UNUSED_SCHEDULER, assets, tls: { cert, key: readFileSync(join(certDir, "key.pem")) }, log: () => {} });
  await tls.start();
});

after(async () => {
  await plain?.close();
  await tls?.close();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

test("the scheduler must be a tcp:// address", () => {
  assert.throws(() => new Gateway({ scheduler: "ws://127.0.0.1:8786" }), ConfigError);
});

test("GET / is the page with its CSP and nosniff; the .wasm is application/wasm, bytes intact", async () => {
  const page = await fetch(plain.url + "/");
  assert.equal(page.status, 200);
  assert.equal(await page.text(), PAGE);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(page.headers.get("content-security-policy")!, /script-src 'self' 'wasm-unsafe-eval'/);
  assert.match(page.headers.get("content-security-policy")!, /connect-src 'self'/);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  const wasm = await fetch(plain.url + "/core.wasm");
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
  assert.deepEqual(new Uint8Array(await wasm.arrayBuffer()), WASM);
});

test("unknown paths are 404, other methods 405, HEAD has no body; /status is JSON naming the scheduler", async () => {
  assert.equal((await fetch(plain.url + "/nope.js")).status, 404);
  const post = await fetch(plain.url + "/", { method: "POST", body: "x" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  const head = await fetch(plain.url + "/", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const status = await fetch(plain.url + "/status");
  assert.equal(status.headers.get("content-type"), "application/json");
  assert.deepEqual(await status.json(), { scheduler: UNUSED_SCHEDULER, workers: [] });
});

test("a WebSocket upgrade anywhere but /worker is refused with 404", async () => {
  const code = await new Promise<number>((resolve, reject) => {
    const ws = new WsClient(plain.url.replace(/^http/, "ws") + "/");
    ws.once("unexpected-response", (_req, res) => (resolve(res.statusCode ?? -1), ws.terminate()));
    ws.once("open", () => (reject(new Error("upgraded on /")), ws.terminate()));
    ws.once("error", () => {});
  });
  assert.equal(code, 404);
});

/** GET over https trusting only our throwaway certificate. */
function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca: cert }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString("utf8")));
        res.on("end", () => resolve({ status: res.statusCode ?? -1, body }));
      })
      .on("error", reject);
  });
}

test("TLS: the page and /status over https; a worker link over wss gets LISTENING with a tcp:// address", async () => {
  assert.match(tls.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await httpsGet(tls.url + "/")).body, PAGE);
  assert.deepEqual(JSON.parse((await httpsGet(tls.url + "/status")).body), { scheduler: UNUSED_SCHEDULER, workers: [] });
  // The same port does not speak plain HTTP.
  const plainTry = await fetch(tls.url.replace(/^https/, "http") + "/status").then(
    () => "answered",
    () => "refused",
  );
  assert.equal(plainTry, "refused");
  const link = await GatewayLink.open(tls.url.replace(/^https/, "wss") + "/worker", (url) => new WsClient(url, { ca: cert }) as unknown as WebSocketLike);
  try {
    const listener = await link.listen(() => {});
    assert.match(listener.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(tls.workers()[0]?.address, listener.address);
    // The worker's address is plain TCP (peers speak dask's TCP to it) and accepts connections.
    const { port } = new URL(listener.address.replace(/^tcp/, "http"));
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port: Number(port) }, () => (s.destroy(), resolve()));
      s.once("error", reject);
    });
  } finally {
    link.close();
  }
});
