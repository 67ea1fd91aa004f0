// Prometheus text exposition (format 0.0.4) of a worker's metrics, for GET /metrics.
// Pure: a snapshot object in, text out; no clocks, no IO, no registry. Names are fixed by the
// issue-3 contract (all prefixed `dask_wasm_`); counters end in `_total` as the Prometheus naming
// guide asks, gauges do not. Spec: https://prometheus.io/docs/instrumenting/exposition_formats/
// (HELP escapes "\" and newline; sample values are Go floats: NaN, +Inf, -Inf spelled out).

/** What /metrics renders: the Worker's own counters (one type, defined beside the Worker). */
import type { WorkerMetrics } from "../worker/worker.ts";

export type MetricsSnapshot = WorkerMetrics;

export const METRIC_PREFIX = "dask_wasm_";

interface MetricSpec {
  field: keyof MetricsSnapshot;
  name: string;
  type: "counter" | "gauge";
  help: string;
}

/** One row per exported metric, in output order. The table is the single source of names. */
export const METRICS: readonly MetricSpec[] = [
  { field: "tasksRun", name: "tasks_run_total", type: "counter", help: "Tasks this worker executed (successes and failures)." },
  { field: "tasksFailed", name: "tasks_failed_total", type: "counter", help: "Tasks that raised (JS throw or Wasm trap) and were reported as task-erred." },
  { field: "tasksExecuting", name: "tasks_executing", type: "gauge", help: "Tasks running in the thread pool now." },
  { field: "keysStored", name: "keys_stored", type: "gauge", help: "Keys held by the worker, in memory or spilled." },
  { field: "bytesStored", name: "bytes_stored", type: "gauge", help: "Bytes of task results held in memory." },
  { field: "bytesSpilled", name: "bytes_spilled", type: "gauge", help: "Bytes of task results spilled to the local directory." },
  { field: "keysSpilled", name: "keys_spilled", type: "gauge", help: "Keys whose value is spilled to the local directory." },
  { field: "transfersIn", name: "transfers_in_total", type: "counter", help: "get_data requests this worker made to peers." },
  { field: "transfersOut", name: "transfers_out_total", type: "counter", help: "get_data requests this worker served." },
  { field: "transferBytesIn", name: "transfer_bytes_in_total", type: "counter", help: "Bytes of values received from peers." },
  { field: "transferBytesOut", name: "transfer_bytes_out_total", type: "counter", help: "Bytes of values sent to peers and clients." },
  { field: "wasmModulesCompiled", name: "wasm_modules_compiled_total", type: "counter", help: "Distinct Wasm modules compiled (once per content hash per worker)." },
  { field: "memoryLimit", name: "memory_limit_bytes", type: "gauge", help: "The worker's --memory-limit in bytes (0 = none)." },
  { field: "rss", name: "rss_bytes", type: "gauge", help: "Resident set size of the worker process." },
];

/** Go's float formatting for the special values; integers print without an exponent. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  // Number#toString switches to exponent form from 1e21; Prometheus parses either.
  return String(v);
}

/** HELP text escaping: backslash and line feed (the only two the format defines for HELP). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/**
 * The whole /metrics body: for each metric a `# HELP`, a `# TYPE` and one sample line, ending
 * with a newline. A field that is missing or not a number is rendered as NaN rather than
 * dropped, so a scrape still shows every name and the gap is visible.
 */
export function renderPrometheus(snapshot: Partial<MetricsSnapshot>): string {
  const lines: string[] = [];
  for (const m of METRICS) {
    const full = METRIC_PREFIX + m.name;
    const raw = snapshot[m.field];
    const value = typeof raw === "number" ? raw : NaN;
    lines.push(`# HELP ${full} ${escapeHelp(m.help)}`, `# TYPE ${full} ${m.type}`, `${full} ${formatValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

/** Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
