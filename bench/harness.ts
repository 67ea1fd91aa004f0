// Tiny benchmark harness shared by bench/micro/*.bench.ts and bench/macro/.
// Measures wall time over repeated batches, keeps the median batch, and prints markdown tables
// whose ratio column is relative to a baseline measured in the same run (never across runs).
// Benchmarks check their result inside the timed loop (cf. msgpack-javascript
// benchmark/decode-string.ts) so a broken path cannot look fast.
import os from "node:os";

export interface Measurement {
  name: string;
  /** operations per second (median batch) */
  opsPerSec: number;
  /** bytes per second if `bytesPerOp` was given */
  bytesPerSec?: number;
  /** median nanoseconds per operation */
  nsPerOp: number;
  note?: string;
}

export interface BenchOptions {
  /** operations per batch (each call of fn counts as one op unless fn returns a count) */
  opsPerBatch?: number;
  /** number of timed batches; the median is reported */
  batches?: number;
  /** minimum wall time per batch in ms; opsPerBatch grows until reached */
  minBatchMs?: number;
  bytesPerOp?: number;
  note?: string;
}

/** Runs fn repeatedly; fn may return the number of operations it performed (default 1). */
export function measure(name: string, fn: () => number | void, opts: BenchOptions = {}): Measurement {
  const batches = opts.batches ?? 7;
  const minBatchMs = opts.minBatchMs ?? 60;
  let opsPerBatch = opts.opsPerBatch ?? 1;
  // warm up and calibrate
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < opsPerBatch; i++) fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= minBatchMs / 4 || opsPerBatch > 1e8) {
      opsPerBatch = Math.max(1, Math.ceil(opsPerBatch * (minBatchMs / Math.max(ms, 0.01))));
      break;
    }
    opsPerBatch *= 4;
  }
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    let ops = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < opsPerBatch; i++) {
      const r = fn();
      ops += typeof r === "number" ? r : 1;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    samples.push(ns / ops);
  }
  samples.sort((a, b) => a - b);
  const nsPerOp = samples[samples.length >> 1]!;
  const m: Measurement = { name, nsPerOp, opsPerSec: 1e9 / nsPerOp };
  if (opts.bytesPerOp) m.bytesPerSec = (opts.bytesPerOp * 1e9) / nsPerOp;
  if (opts.note) m.note = opts.note;
  return m;
}

export interface Table {
  title: string;
  /** name of the row every ratio is relative to */
  baseline: string;
  rows: Measurement[];
  /** free text printed under the table (what the workload is) */
  caption?: string;
}

function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(n < 10 ? 2 : 0);
}

function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/** Markdown table; ratio = ops/s of the row ÷ ops/s of the baseline (higher is better). */
export function formatTable(t: Table): string {
  const base = t.rows.find((r) => r.name === t.baseline);
  const hasBytes = t.rows.some((r) => r.bytesPerSec !== undefined);
  const lines = [`### ${t.title}`, ""];
  if (t.caption) lines.push(t.caption, "");
  lines.push(`| implementation | time/op | ops/s |${hasBytes ? " throughput |" : ""} vs ${t.baseline} |`);
  lines.push(`|---|---:|---:|${hasBytes ? "---:|" : ""}---:|`);
  for (const r of t.rows) {
    const ratio = base ? r.opsPerSec / base.opsPerSec : NaN;
    const tp = hasBytes ? ` ${r.bytesPerSec !== undefined ? `${fmt(r.bytesPerSec)}B/s` : ""} |` : "";
    lines.push(`| ${r.name}${r.note ? ` (${r.note})` : ""} | ${fmtNs(r.nsPerOp)} | ${fmt(r.opsPerSec)} |${tp} ${ratio.toFixed(2)}× |`);
  }
  return lines.join("\n");
}

/** Header naming the runtime, CPU and date, printed once per run. */
export function environmentLine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  return `Node ${process.version}, ${os.platform()} ${os.arch()}, ${os.cpus().length} × ${cpu}, ${new Date().toISOString().slice(0, 10)}`;
}

/** Throws if a benchmarked path produced a wrong result (checked inside the timed loop). */
export function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark check failed: ${what}`);
}
