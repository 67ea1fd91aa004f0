// Assertions on executor outcomes (src/worker/task-runner.ts TaskOutcome), shared by the tests
// of the worker_threads Executor and of the InlineExecutor.
import assert from "node:assert/strict";
import type { TaskOutcome } from "../../src/worker/task-runner.ts";

/** The value of an "ok" outcome; fails the test with the error text otherwise. */
export function ok(o: TaskOutcome): unknown {
  assert.equal(o.status, "ok", o.status === "error" ? `${o.typeName}: ${o.message}` : "");
  return (o as Extract<TaskOutcome, { status: "ok" }>).value;
}

/** An "error" outcome; fails the test otherwise. */
export function err(o: TaskOutcome): Extract<TaskOutcome, { status: "error" }> {
  assert.equal(o.status, "error", `expected an error, got ${JSON.stringify(o)}`);
  return o as Extract<TaskOutcome, { status: "error" }>;
}
