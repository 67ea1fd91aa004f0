// One watcher for a child process's output, shared by every test helper that starts a process
// (dask.ts, wasm-worker.ts, gateway.ts): collects stdout + stderr, resolves `waitFor(pattern)`
// once a matching line has been printed (earlier lines count), rejects every waiter with the log
// tail when the process exits first or a deadline passes, and stops it (signal, then SIGKILL
// after a grace). No sleeps: readiness is a log line.
import type { ChildProcess } from "node:child_process";

export interface OutputWatch {
  /** Sends `signal` (default SIGTERM), then SIGKILL after `graceMs`; resolves once exited. */
  stop(graceMs: number, signal?: NodeJS.Signals): Promise<void>;
  /** Everything printed so far (stdout and stderr interleaved). */
  log(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Whether the process has exited. */
  readonly exited: boolean;
}

/** The last `lines` lines of a log, for failure messages. */
export function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

export function watchOutput(proc: ChildProcess, name: string, defaultTimeoutMs: number): OutputWatch {
  let text = "";
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }> = [];
  const onData = (chunk: Buffer): void => {
    text += chunk.toString("utf8");
    for (const w of [...waiters]) {
      const m = text.match(w.pattern);
      if (m) {
        clearTimeout(w.timer);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  proc.once("exit", (code, signal) => {
    exited = true;
    for (const w of waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`${name} exited (code ${code}, signal ${signal}) before printing ${w.pattern}:\n${tail(text)}`));
    }
  });
  return {
    async stop(graceMs, signal = "SIGTERM") {
      if (exited || proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      const killer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exitedPromise;
      clearTimeout(killer);
    },
    log: () => text,
    get exited() {
      return exited;
    },
    waitFor(pattern, timeoutMs = defaultTimeoutMs) {
      const m = text.match(pattern);
      if (m) return Promise.resolve(m);
      if (exited) return Promise.reject(new Error(`${name} has exited; no ${pattern} in:\n${tail(text)}`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.findIndex((w) => w.timer === timer), 1);
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${tail(text)}`));
        }, timeoutMs);
        waiters.push({ pattern, resolve, reject, timer });
      });
    },
  };
}
