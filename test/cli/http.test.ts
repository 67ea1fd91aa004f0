// The /health + /metrics server (src/cli/http.ts) on a real socket (127.0.0.1, port 0) with a
// fake metrics source: status codes, content type, values read at scrape time, 404/405, a
// throwing source -> 500 while the server keeps serving, and close() releasing the port.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer } from "node:net";
import { startHttpServer } from "../../src/cli/http.ts";
import type { MetricsSnapshot } from "../../src/cli/metrics.ts";

test("GET /health, GET /metrics (live values), 404, 405, 500, then close", async () => {
  let tasksRun = 0;
  let broken = false;
  const server = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    metrics: (): Partial<MetricsSnapshot> => {
      if (broken) throw new Error("source broke");
      return { tasksRun, bytesSpilled: 1234 };
    },
  });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.port > 0);
    const health = await fetch(server.url + "/health");
    assert.equal(health.status, 200);
    assert.equal(await health.text(), "ok");

    tasksRun = 7;
    const m1 = await fetch(server.url + "/metrics");
    assert.equal(m1.status, 200);
    assert.match(m1.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const body1 = await m1.text();
    assert.match(body1, /^dask_wasm_tasks_run_total 7$/m);
    assert.match(body1, /^dask_wasm_bytes_spilled 1234$/m);
    tasksRun = 8; // read at scrape time, not at start
    assert.match(await (await fetch(server.url + "/metrics?x=1")).text(), /^dask_wasm_tasks_run_total 8$/m);

    const head = await fetch(server.url + "/metrics", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");

    assert.equal((await fetch(server.url + "/")).status, 404);
    assert.equal((await fetch(server.url + "/metricsx")).status, 404);
    const post = await fetch(server.url + "/health", { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.text();

    broken = true;
    const bad = await fetch(server.url + "/metrics");
    assert.equal(bad.status, 500);
    assert.match(await bad.text(), /source broke/);
    broken = false;
    assert.equal((await fetch(server.url + "/health")).status, 200);
  } finally {
    await server.close();
  }
  // The port is free again: a plain TCP server can bind it.
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(server.port, "127.0.0.1", () => probe.close(() => resolve()));
  });
  await assert.rejects(fetch(server.url + "/health"));
});

test("a taken port is an error from startHttpServer, not a crash later", async () => {
  const first = await startHttpServer({ host: "127.0.0.1", port: 0, metrics: () => ({}) });
  try {
    await assert.rejects(startHttpServer({ host: "127.0.0.1", port: first.port, metrics: () => ({}) }), { code: "EADDRINUSE" });
  } finally {
    await first.close();
  }
});

test("close() does not wait for a client that connected and sent nothing", async () => {
  const server = await startHttpServer({ host: "127.0.0.1", port: 0, metrics: () => ({}) });
  const sock = connect(server.port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  const dropped = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  sock.on("error", () => {});
  await server.close(); // would never resolve if the silent connection kept the server open
  await dropped;
});
