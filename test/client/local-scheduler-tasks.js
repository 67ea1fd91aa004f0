// Task module for the graph and local-scheduler tests (loaded with options.modules, so each
// export is "local-scheduler-tasks.js#<name>"). Plain JS: threads and child processes import it.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { threadId } from "node:worker_threads";

export function add(a, b) {
  return a + b;
}

export function inc(x) {
  return x + 1;
}

export function mul(a, b) {
  return a * b;
}

/** Appends `tag` as one line to `path` (a run counter that works across threads and processes), returns x. */
export function record(path, tag, x) {
  appendFileSync(path, `${tag}\n`);
  return x;
}

/** Where it ran: process id and worker_threads id (0 = a main thread). */
export function where() {
  return { pid: process.pid, threadId };
}

/** Fails the first `failures` calls (counted in the file at `path`), then returns `value`. */
export function flaky(path, failures, value) {
  let n = 0;
  try {
    n = Number(readFileSync(path, "utf8")) || 0;
  } catch {
    n = 0;
  }
  writeFileSync(path, String(n + 1));
  if (n < failures) throw new RangeError(`flaky failure ${n + 1} of ${failures}`);
  return value;
}

export function fail(msg) {
  throw new TypeError(msg);
}

export function exitProcess(code) {
  process.exit(code);
}

export function echo(x) {
  return x;
}

export async function later(x) {
  await Promise.resolve();
  return x * 10;
}

export function withKw(a, kw) {
  return `${a}:${kw.sep}`;
}
