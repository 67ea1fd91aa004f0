// Client-side overhead of asCompleted and of progress bars (src/client/as-completed.ts,
// src/client/progress.ts) per future, against Promise.all over the same result() promises
// (baseline: the least a caller can do to wait for N futures).
// Workload: 10,000 fake futures whose result() promises resolve in a shuffled order after the
// iterator is created (so every entry really waits and is queued). Each run checks it saw
// every future once (sum of values). Async, so batches are timed here, not with `measure`.
import { Writable } from "node:stream";
import { check, type Measurement, type Table } from "../harness.ts";
import { asCompleted } from "../../src/client/as-completed.ts";
import { Progress, track } from "../../src/client/progress.ts";

const N = 10_000;
const BATCHES = 7;

interface Fake {
  key: number;
  result(): Promise<number>;
}

/** N futures plus a function that resolves them all in a fixed shuffled order. */
function fakes(): { fs: Fake[]; settle: () => void } {
  const resolvers: Array<() => void> = [];
  const fs: Fake[] = [];
  for (let i = 0; i < N; i++) {
    const p = new Promise<number>((r) => resolvers.push(() => r(i)));
    fs.push({ key: i, result: () => p });
  }
  const order = resolvers.map((_, i) => (i * 7919) % N); // 7919 is prime and coprime with N
  return { fs, settle: () => order.forEach((i) => resolvers[i]!()) };
}

const EXPECTED = (N * (N - 1)) / 2;
const nullStream = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

async function time(name: string, body: () => Promise<number>, note?: string): Promise<Measurement> {
  const samples: number[] = [];
  for (let b = 0; b < BATCHES + 1; b++) {
    const t0 = process.hrtime.bigint();
    const sum = await body();
    const ns = Number(process.hrtime.bigint() - t0);
    check(sum === EXPECTED, `${name}: every future once (sum ${sum})`);
    if (b > 0) samples.push(ns / N); // the first batch warms up
  }
  samples.sort((a, b) => a - b);
  const nsPerOp = samples[samples.length >> 1]!;
  return { name, nsPerOp, opsPerSec: 1e9 / nsPerOp, ...(note ? { note } : {}) };
}

export async function run(): Promise<Table[]> {
  const rows: Measurement[] = [];
  rows.push(await time("Promise.all(result())", async () => {
    const { fs, settle } = fakes();
    const all = Promise.all(fs.map((f) => f.result()));
    settle();
    return (await all).reduce((a, b) => a + b, 0);
  }));
  rows.push(await time("asCompleted", async () => {
    const { fs, settle } = fakes();
    const it = asCompleted(fs);
    settle();
    let sum = 0;
    for await (const f of it) sum += f.key;
    return sum;
  }));
  rows.push(await time("asCompleted + Progress (drawn to a null pipe)", async () => {
    const { fs, settle } = fakes();
    const bar = new Progress(N, { enabled: true, stream: nullStream() });
    const it = asCompleted(fs, { onSettled: () => bar.tick() });
    settle();
    let sum = 0;
    for await (const f of it) sum += f.key;
    bar.stop();
    return sum;
  }));
  rows.push(await time("track() (bar disabled)", async () => {
    const { fs, settle } = fakes();
    const all = track(fs.map((f) => f.result()), { enabled: false });
    settle();
    return (await all).reduce((a, b) => a + b, 0);
  }));
  rows.push(await time("track() (bar drawn to a null pipe)", async () => {
    const { fs, settle } = fakes();
    const all = track(fs.map((f) => f.result()), { enabled: true, stream: nullStream() });
    settle();
    return (await all).reduce((a, b) => a + b, 0);
  }));
  return [{
    title: "asCompleted / progress: client-side cost per future (10,000 futures)",
    baseline: "Promise.all(result())",
    rows,
    caption: "Fake futures resolved in a shuffled order after the iterator exists; time per future, median of 7 runs.",
  }];
}
