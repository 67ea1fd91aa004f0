// Prometheus rendering (src/cli/metrics.ts): every contract name, HELP/TYPE lines, counters end
// in _total, values round-trip; the text is also parsed by an independent reader written here
// from the exposition-format grammar, so a formatting slip fails even if names stay right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { METRICS, METRIC_PREFIX, escapeHelp, formatValue, renderPrometheus, type MetricsSnapshot } from "../../src/cli/metrics.ts";

const CONTRACT_NAMES = [
  "tasks_run_total", "tasks_failed_total", "tasks_executing", "keys_stored", "bytes_stored", "bytes_spilled",
  "keys_spilled", "transfers_in_total", "transfers_out_total", "transfer_bytes_in_total", "transfer_bytes_out_total",
  "wasm_modules_compiled_total", "memory_limit_bytes", "rss_bytes",
];

/** A snapshot where each field has a different value, so a swapped field shows. */
function distinctSnapshot(): MetricsSnapshot {
  const s = {} as Record<string, number>;
  METRICS.forEach((m, i) => (s[m.field] = (i + 1) * 1_000_003));
  return s as unknown as MetricsSnapshot;
}

/** Minimal exposition parser: name -> {type, help, value}; throws on any line it cannot read. */
function parseExposition(text: string): Map<string, { type?: string; help?: string; value?: number }> {
  assert.ok(text.endsWith("\n"), "the body ends with a line feed");
  const out = new Map<string, { type?: string; help?: string; value?: number }>();
  const entry = (n: string) => out.get(n) ?? (out.set(n, {}), out.get(n)!);
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line))) entry(m[1]!).help = m[2]!;
    else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.equal(entry(m[1]!).value, undefined, "TYPE comes before the sample");
      entry(m[1]!).type = m[2]!;
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line))) {
      const v = m[2] === "NaN" ? NaN : m[2] === "+Inf" ? Infinity : m[2] === "-Inf" ? -Infinity : Number(m[2]);
      assert.ok(!Number.isNaN(v) || m[2] === "NaN", `sample value ${m[2]}`);
      entry(m[1]!).value = v;
    } else assert.fail(`unparseable line: ${JSON.stringify(line)}`);
  }
  return out;
}

test("every contract metric is rendered once, with HELP, TYPE and its own value", () => {
  const snap = distinctSnapshot();
  const parsed = parseExposition(renderPrometheus(snap));
  assert.deepEqual([...parsed.keys()].sort(), CONTRACT_NAMES.map((n) => METRIC_PREFIX + n).sort());
  for (const m of METRICS) {
    const e = parsed.get(METRIC_PREFIX + m.name)!;
    assert.equal(e.value, snap[m.field], m.name);
    assert.ok(e.help && e.help.length > 0, m.name);
    // Naming guide: counters and only counters end in _total.
    assert.equal(e.type, m.name.endsWith("_total") ? "counter" : "gauge", m.name);
  }
});

test("missing or non-numeric fields render as NaN instead of disappearing", () => {
  const parsed = parseExposition(renderPrometheus({ tasksRun: 5, rss: "x" as unknown as number }));
  assert.equal(parsed.get("dask_wasm_tasks_run_total")!.value, 5);
  assert.ok(Number.isNaN(parsed.get("dask_wasm_rss_bytes")!.value!));
  assert.ok(Number.isNaN(parsed.get("dask_wasm_keys_stored")!.value!));
  assert.equal(parsed.size, CONTRACT_NAMES.length);
});

test("special values and HELP escaping follow the text format", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(Number(formatValue(2 ** 53)), 2 ** 53);
  assert.equal(Number(formatValue(0.25)), 0.25);
  assert.equal(escapeHelp("a\\b\nc"), "a\\\\b\\nc");
});
