// The process helpers every live test relies on: readiness by log line, SIGTERM -> SIGKILL,
// the registry behind stopAll(), and failures that carry the log tail instead of hanging.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { runPythonScript, startPython, stopAll } from "../helpers/dask.ts";

after(() => stopAll());

test("stop() escalates to SIGKILL for a process that ignores SIGTERM", async () => {
  const p = await startPython("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(3600)", [], { ready: /ready/ });
  await p.stop(100);
  assert.equal(p.proc.signalCode, "SIGKILL");
});

test("a process that exits before its ready line rejects with its output, not a hang", async () => {
  await assert.rejects(startPython("print('about to fail'); raise SystemExit(3)", [], { ready: /never printed/ }), /exited \(code 3.*about to fail/s);
});

test("runPythonScript returns stdout and reports a failing script with its stderr", async () => {
  assert.equal(await runPythonScript("import sys; print(sys.argv[1] * 2)", ["ab"]), "abab\n");
  await assert.rejects(runPythonScript("raise ValueError('nope')"), /python exited 1:[\s\S]*ValueError: nope/);
});

test("stopAll() stops every process still running", async () => {
  const a = await startPython("import time; print('up', flush=True); time.sleep(3600)", [], { ready: /up/ });
  const b = await startPython("import time; print('up', flush=True); time.sleep(3600)", [], { ready: /up/ });
  await stopAll();
  assert.equal(a.proc.signalCode, "SIGTERM");
  assert.equal(b.proc.signalCode, "SIGTERM");
});
