// Progress bars (src/client/progress.ts): off unless asked, lines on a non-TTY stream (the CI
// log case), track() resolves/rejects exactly like Promise.all and stops its timer either way.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { Progress, progressWanted, track } from "../../src/client/progress.ts";

/** A non-TTY stream that keeps what was written (cli-progress checks `isTTY`). */
function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (c: Buffer) => (text += c.toString("utf8")));
  return { stream, text: () => text };
}

test("progressWanted: explicit option wins, else DASK_WASM_PROGRESS, else off", () => {
  assert.equal(progressWanted(undefined, {}), false);
  assert.equal(progressWanted(undefined, { DASK_WASM_PROGRESS: "1" }), true);
  assert.equal(progressWanted(undefined, { DASK_WASM_PROGRESS: "true" }), true);
  assert.equal(progressWanted(undefined, { DASK_WASM_PROGRESS: "0" }), false);
  assert.equal(progressWanted(false, { DASK_WASM_PROGRESS: "1" }), false);
  assert.equal(progressWanted(true, {}), true);
});

test("a disabled bar writes nothing", async () => {
  const s = sink();
  const values = await track([Promise.resolve(1), Promise.resolve(2)], { enabled: false, stream: s.stream });
  assert.deepEqual(values, [1, 2]);
  assert.equal(s.text(), "");
});

test("on a pipe the bar prints a first and a final line with the counts", async () => {
  const s = sink();
  const n = 37;
  const values = await track(
    Array.from({ length: n }, (_, i) => Promise.resolve(i * i)),
    { enabled: true, stream: s.stream, label: "gather" },
  );
  assert.deepEqual(values, Array.from({ length: n }, (_, i) => i * i));
  const lines = s.text().split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.length >= 2, s.text());
  assert.match(lines[0]!, new RegExp(`^gather \\[-+\\] 0/${n} \\| 0%`));
  assert.match(lines.at(-1)!, new RegExp(`^gather \\[#+\\] ${n}/${n} \\| 100%`));
});

test("track rejects with the first rejection, stops the bar, counts every settled item", async () => {
  const s = sink();
  let later!: (v: number) => void;
  const slow = new Promise<number>((r) => (later = r));
  const bad = Promise.reject(new Error("task failed"));
  await assert.rejects(track([Promise.resolve(1), bad, slow], { enabled: true, stream: s.stream, label: "t" }), /task failed/);
  const final = s.text().split("\n").filter((l) => l.trim() !== "").at(-1)!;
  // Two of three had settled when the failure stopped it; the bar's last line says so.
  assert.match(final, /^t \[[#-]+\] 2\/3/);
  later(3);
});

test("Progress.tick and stop are safe when disabled and after stop", () => {
  const s = sink();
  const off = new Progress(3, { enabled: false, stream: s.stream });
  off.tick();
  off.stop();
  assert.equal(off.done, 1);
  const on = new Progress(2, { enabled: true, stream: s.stream, label: "p" });
  on.tick(2);
  on.stop();
  on.stop();
  on.tick();
  assert.equal(on.done, 3);
  assert.match(s.text(), /p \[#+\] 2\/2/);
});
