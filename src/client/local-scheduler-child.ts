// Child process entry of the "processes" local scheduler (local-scheduler.ts ProcessPool):
// imports the module files named in argv[2] (a JSON array of file URLs), answers {t:"ready"}
// (or {t:"load-error"}), then runs one {t:"call"} at a time and answers {t:"done"}.
//
// IO: its IPC channel and the module files only. Must not: run anything but a registered export
// or an export of Wasm bytes the task carries (no shipped source), let a task's throw escape
// (every outcome is a message), or outlive its parent (it exits when the IPC channel closes). Values cross by the "advanced"
// (structured clone) serialization, with NdArrays and tuple marks tagged as for threads (clone.ts).
import { loadModules, lookupExport } from "../worker/modules.ts";
import type { Registry } from "../worker/modules.ts";
import { fromClone, toClone } from "../worker/clone.ts";
import { callWasmExport, localFunction } from "./local-scheduler.ts";

export interface ChildCall {
  t: "call";
  id: number;
  /** "tasks.js#inc", "dask-wasm:js:tasks.js#inc" or "dask-wasm:wasm:add" (module bytes = args[0]) */
  ref: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
}

export type ChildReply =
  | { t: "ready" }
  | { t: "load-error"; message: string; code?: string }
  | { t: "done"; id: number; ok: true; value: unknown }
  | { t: "done"; id: number; ok: false; typeName: string; message: string; stack: string; code?: string };

/** A thrown value -> the fields the parent rebuilds an Error from (a `throw "x"` has no stack). */
function errorFields(e: unknown): { typeName: string; message: string; stack: string; code?: string } {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { typeName: e.name || "Error", message: e.message, stack: e.stack ?? "", ...(typeof code === "string" ? { code } : {}) };
  }
  return { typeName: "Error", message: String(e), stack: "" };
}

async function main(): Promise<void> {
  const send = (m: ChildReply): void => {
    process.send!(m);
  };
  // The parent went away: nothing can read our answers any more.
  process.on("disconnect", () => process.exit(0));
  const urls = JSON.parse(process.argv[2] ?? "[]") as string[];
  (globalThis as { daskWasm?: unknown }).daskWasm = Object.freeze({ workerName: process.argv[3] ?? "", thread: 0 });
  let reg: Registry;
  try {
    reg = await loadModules(urls);
  } catch (e) {
    const f = errorFields(e);
    send({ t: "load-error", message: f.message, ...(f.code ? { code: f.code } : {}) });
    return;
  }
  // The parent sends one call at a time, so calls never interleave inside this process.
  process.on("message", (call: ChildCall) => {
    void (async () => {
      let reply: ChildReply;
      try {
        const args = fromClone(call.args) as unknown[];
        const kwargs = fromClone(call.kwargs) as Record<string, unknown>;
        const spec = localFunction(call.ref);
        const value =
          spec.kind === "wasm"
            ? callWasmExport(args[0], spec.export, args.slice(1))
            : await lookupExport(reg, spec.kind === "js" ? spec.ref : call.ref)(...(Object.keys(kwargs).length > 0 ? [...args, kwargs] : args));
        reply = { t: "done", id: call.id, ok: true, value: toClone(value) };
        // A value the serializer refuses (a function) throws here and fails the task below.
        send(reply);
        return;
      } catch (e) {
        reply = { t: "done", id: call.id, ok: false, ...errorFields(e) };
      }
      send(reply);
    })();
  });
  send({ t: "ready" });
}

if (!process.send) throw new Error("src/client/local-scheduler-child.ts runs only as a child process with an IPC channel");
await main();
