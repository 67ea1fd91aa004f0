// Progress bars for long client operations (gather, compute, map on many futures): a thin
// layer over cli-progress (distributed's diagnostics/progressbar.py `TextProgressBar` plays
// this role in Python).
//
// Role: count settled promises/futures and draw "label [████░░] 40/100 | 40% | 1s" to a stream.
// With `noTTYOutput` the bar also prints on a pipe (a CI log): one line at start, one every
// `intervalMs` while running, and a final line at the end, instead of in-place redraws.
//
// Policy: off by default in the library (a library must not write to the user's stderr
// unasked); the CLI turns it on. `progressWanted(option)` decides: an explicit option wins,
// else the environment variable DASK_WASM_PROGRESS=1|0 that the CLI (or a user) sets.
//
// Must not: swallow or reorder results (`track` resolves exactly as Promise.all would), or keep
// the process alive (the bar's timer is always stopped, on success and on failure).
import { SingleBar } from "cli-progress";

export interface ProgressOptions {
  /** Draw at all (default: `progressWanted()`, i.e. off unless DASK_WASM_PROGRESS=1). */
  enabled?: boolean;
  /** Text before the bar (default "dask-wasm"). */
  label?: string;
  /** Where to draw (default process.stderr). A pipe/file gets one line per update. */
  stream?: NodeJS.WritableStream;
  /** On a non-TTY stream, ms between lines while running (cli-progress notTTYSchedule; default 2000). */
  intervalMs?: number;
}

/** The environment switch read when no explicit `enabled` option is given. */
export const PROGRESS_ENV = "DASK_WASM_PROGRESS";

/** Whether to draw: the explicit option, else DASK_WASM_PROGRESS ("1"/"true" on), else off. */
export function progressWanted(option?: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (option !== undefined) return option;
  const v = (env[PROGRESS_ENV] ?? "").toLowerCase();
  return v === "1" || v === "true" || v === "yes";
}

/**
 * One bar over `total` items. When disabled every method is a no-op, so callers need no
 * branches: `const bar = new Progress(n, opts); … bar.tick(); … bar.stop();`.
 */
export class Progress {
  readonly total: number;
  readonly enabled: boolean;
  #done = 0;
  #bar: SingleBar | undefined;

  constructor(total: number, opts: ProgressOptions = {}) {
    this.total = total;
    this.enabled = progressWanted(opts.enabled);
    if (!this.enabled) return;
    const stream = opts.stream ?? process.stderr;
    this.#bar = new SingleBar({
      format: `${opts.label ?? "dask-wasm"} [{bar}] {value}/{total} | {percentage}% | {duration_formatted}`,
      stream,
      // A pipe (CI log) still gets lines; cli-progress would otherwise print nothing there.
      noTTYOutput: true,
      notTTYSchedule: opts.intervalMs ?? 2000,
      hideCursor: false,
      // Our own signal handling (CLI) decides exits; the bar must not add SIGINT listeners.
      gracefulExit: false,
      barCompleteChar: "#",
      barIncompleteChar: "-",
    });
    this.#bar.start(total, 0);
  }

  /** Items settled so far. */
  get done(): number {
    return this.#done;
  }

  /** One more item settled (successfully or not). */
  tick(n = 1): void {
    this.#done += n;
    this.#bar?.update(this.#done);
  }

  /** Draws the final line and stops the timer; safe to call twice. */
  stop(): void {
    const bar = this.#bar;
    this.#bar = undefined;
    bar?.stop();
  }
}

/**
 * Promise.all with a bar: resolves with every value in input order, or rejects with the first
 * rejection (after which the bar stops; the other promises still settle, their rejections are
 * handled here so none is reported as unhandled).
 */
export async function track<T>(promises: Iterable<PromiseLike<T>>, opts: ProgressOptions = {}): Promise<T[]> {
  const list = [...promises];
  const bar = new Progress(list.length, opts);
  try {
    return await Promise.all(
      list.map((p) =>
        Promise.resolve(p).then(
          (v) => {
            bar.tick();
            return v;
          },
          (e: unknown) => {
            bar.tick();
            throw e;
          },
        ),
      ),
    );
  } finally {
    bar.stop();
  }
}
