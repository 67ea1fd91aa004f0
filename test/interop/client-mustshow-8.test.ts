// LIVE, issue 4 must-show 8: asCompleted over 100 futures from client.map yields each exactly
// once (keys compared as sets and counted), and a progress bar driven by it writes its lines to
// this process's stderr, i.e. into the CI log, while the test also captures them to check the
// counts it printed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { asCompleted } from "../../src/client/as-completed.ts";
import { Progress, track } from "../../src/client/progress.ts";
import { startTestCluster, type TestCluster } from "../helpers/client-cluster.ts";

let c: TestCluster;
before(async () => {
  c = await startTestCluster({ workers: [{ name: "w1", nthreads: 2 }, { name: "w2", nthreads: 2 }] });
});
after(() => c?.stop());

/** A non-TTY stream that forwards to stderr (the CI log) and keeps a copy. */
function teeToStderr(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
    process.stderr.write(chunk);
  });
  return { stream, text: () => text };
}

const N = 100;

test(`asCompleted yields each of ${N} futures once; the progress bar reaches ${N}/${N} in the log`, async () => {
  const inputs = Array.from({ length: N }, (_, i) => i * 3);
  const fs = c.client.map("tasks.js#inc", inputs);
  assert.equal(new Set(fs.map((f) => f.key)).size, N);
  const log = teeToStderr();
  const bar = new Progress(N, { enabled: true, stream: log.stream, label: "asCompleted" });
  const seen: string[] = [];
  try {
    for await (const f of asCompleted(fs, { onSettled: () => bar.tick() })) {
      assert.ok(f.done(), `${f.key} yielded before it was done`);
      seen.push(f.key as string);
    }
  } finally {
    bar.stop();
  }
  assert.equal(seen.length, N);
  assert.deepEqual([...seen].sort(), fs.map((f) => f.key as string).sort());
  assert.equal(bar.done, N);
  assert.deepEqual(await c.client.gather(fs), inputs.map((x) => x + 1));
  const lines = log.text().split("\n").filter((l) => l.trim() !== "");
  assert.match(lines[0]!, new RegExp(`^asCompleted \\[-+\\] 0/${N}`));
  assert.match(lines.at(-1)!, new RegExp(`^asCompleted \\[#+\\] ${N}/${N} \\| 100%`));
});

test("withResults pairs each future with its value; track() draws a bar over a gather of many results", async () => {
  const inputs = Array.from({ length: N }, (_, i) => i);
  const fs = c.client.map("tasks.js#double", inputs);
  const byKey = new Map(fs.map((f, i) => [f.key, inputs[i]!]));
  let n = 0;
  for await (const [f, v] of asCompleted(fs).withResults()) {
    assert.equal(v, 2 * byKey.get(f.key)!);
    n++;
  }
  assert.equal(n, N);
  const log = teeToStderr();
  const values = await track(fs.map((f) => f.result()), { enabled: true, stream: log.stream, label: "gather" });
  assert.deepEqual(values, inputs.map((x) => 2 * x));
  assert.match(log.text(), new RegExp(`gather \\[#+\\] ${N}/${N} \\| 100%`));
});

test("client.gather(futures of a map, { progress }) draws a bar to the end while it waits", async () => {
  const inputs = Array.from({ length: N }, (_, i) => 1000 + i);
  const fs = c.client.map("tasks.js#inc", inputs);
  const log = teeToStderr();
  const values = await c.client.gather(fs, { progress: { enabled: true, stream: log.stream, label: "map" } });
  assert.deepEqual(values, inputs.map((x) => x + 1));
  assert.match(log.text(), new RegExp(`map \\[#+\\] ${N}/${N} \\| 100%`));
});
