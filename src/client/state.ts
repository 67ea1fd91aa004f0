// The client's bookkeeping (distributed client.py `Client.futures`, `FutureState`, the
// `_stream_handlers` for key-in-memory / task-erred / lost-data / cancelled-key / restart /
// task-retried): per key, how many Future handles point at it and what the scheduler last said.
//
// Role: PURE. Stream ops in -> per-key resolutions out, plus the stream ops the client must send
// (client-releases-keys when the last handle goes). No IO, no timers, no promises: the shell
// (client.ts) wakes waiting futures from the resolutions and writes the ops. Must not: touch a
// comm, decide timeouts, or throw on anything the scheduler sends (an op for a key we no longer
// hold is ignored, as Python does for keys missing from `self.futures`).
//
// Why a refcount and not one record per Future: dask keys are shared. Two `submit` calls with the
// same pure task give two handles on ONE key; the key is released on the scheduler only when
// both handles are gone (client.py `_inc_ref` / `_dec_ref`).
import { describeException } from "../protocol/pickle-reader.ts";
import { deserialize, Serialized } from "../protocol/serialize.ts";
import { getField } from "../comm/rpc.ts";
import { isKey, keyFromId, keyId, type Key } from "../protocol/values.ts";

export type FutureStatus = "pending" | "finished" | "error" | "cancelled" | "lost";

/** Why a key was cancelled: by request, by a scheduler restart, or because the scheduler went away. */
export type CancelReason = "cancelled" | "restart" | "scheduler-lost" | "client-closed";

/** What the client knows about one key. Read-only outside this module. */
export interface KeyRecord {
  readonly key: Key;
  status: FutureStatus;
  /** Live Future handles on this key. */
  refs: number;
  /** task-erred: the remote exception as text ("builtins.ValueError: boom"). */
  exceptionText?: string;
  /** task-erred: traceback text when the worker sent a readable one. */
  tracebackText?: string;
  /** Set with status "cancelled". */
  reason?: CancelReason;
}

/** A key whose status changed; the shell wakes whoever waits on it. */
export interface Resolution {
  readonly id: string;
  readonly status: FutureStatus;
}

/** An op for the client's batched stream. */
export type StreamOp = Record<string, unknown>;

/** The text of an exception as a scheduler forwards it (§10.1-10.2): pickle bytes, Serialized, or str. */
export function exceptionTextOf(value: unknown): string {
  try {
    let v = value;
    // Python workers send Serialized(dask "bytes" = pickle); the codec keeps it opaque for us.
    if (v instanceof Serialized) v = deserialize(v.header, v.frames, { keepUnreadable: true });
    if (typeof v === "string") return v;
    if (v instanceof Uint8Array) {
      // Every pickle of protocol >= 2 starts with PROTO (0x80); other bytes are shown as text
      // rather than as a hex summary of a "pickle" that never was one.
      if (v[0] === 0x80) return describeException(v);
      return new TextDecoder("utf-8", { fatal: false }).decode(v);
    }
    if (v === null || v === undefined) return "";
    return String(v);
  } catch (error) {
    return `(unreadable exception: ${error instanceof Error ? error.message : String(error)})`;
  }
}

/**
 * Client state machine. One mutator per stimulus; every mutator returns what changed.
 * `handle` is the wire side (scheduler -> client stream ops).
 */
export class ClientState {
  readonly clientId: string;
  #keys = new Map<string, KeyRecord>();

  constructor(clientId: string) {
    this.clientId = clientId;
  }

  get(key: Key | string): KeyRecord | undefined {
    return this.#keys.get(typeof key === "string" ? key : keyId(key));
  }

  /** Ids of every key with at least one handle. */
  ids(): string[] {
    return [...this.#keys.keys()];
  }

  get size(): number {
    return this.#keys.size;
  }

  /** One more handle on `key`. Returns true when the key is new to this client (nothing asked for it yet). */
  acquire(key: Key): boolean {
    const id = keyId(key);
    const rec = this.#keys.get(id);
    if (rec) {
      rec.refs++;
      return false;
    }
    this.#keys.set(id, { key, status: "pending", refs: 1 });
    return true;
  }

  /**
   * One handle fewer. When the last goes, the key is forgotten here and the scheduler is told
   * (client-releases-keys), so its data can be freed; returns that op, or nothing.
   */
  release(id: string): StreamOp[] {
    const rec = this.#keys.get(id);
    if (!rec) return [];
    rec.refs--;
    if (rec.refs > 0) return [];
    this.#keys.delete(id);
    // Nothing to release on a scheduler that already forgot us (restart, lost scheduler).
    if (rec.status === "cancelled" && rec.reason !== "cancelled") return [];
    return [{ op: "client-releases-keys", keys: [rec.key], client: this.clientId }];
  }

  /**
   * A key is being (re)submitted: a record left cancelled or erred by an earlier run goes back
   * to pending, so the new run's outcome is what its handles see (client.py makes a fresh
   * FutureState for a key it no longer tracks; here old handles share the record).
   */
  resubmit(key: Key): Resolution[] {
    const id = keyId(key);
    const rec = this.#keys.get(id);
    if (!rec || (rec.status !== "cancelled" && rec.status !== "error")) return [];
    rec.status = "pending";
    delete rec.reason;
    delete rec.exceptionText;
    delete rec.tracebackText;
    return [{ id, status: "pending" }];
  }

  /** The value is on a worker now (scatter answers before the stream's key-in-memory). */
  markFinished(key: Key): Resolution[] {
    return this.#set(keyId(key), "finished");
  }

  /** A local cancel: the scheduler will confirm with cancelled-key, but waiters stop now. */
  markCancelled(ids: readonly string[], reason: CancelReason): Resolution[] {
    const out: Resolution[] = [];
    for (const id of ids) out.push(...this.#set(id, "cancelled", (r) => (r.reason = reason)));
    return out;
  }

  /** Every key is cancelled with `reason` (restart op, scheduler gone, client closing). */
  cancelAll(reason: CancelReason): Resolution[] {
    return this.markCancelled([...this.#keys.keys()], reason);
  }

  /** Scheduler -> client stream ops (§9.3). Unknown ops and unknown keys change nothing. */
  handle(op: unknown): Resolution[] {
    const name = getField(op, "op");
    if (name === "restart") return this.cancelAll("restart");
    const rawKey = getField(op, "key");
    if (!isKey(rawKey)) return [];
    const id = keyId(rawKey);
    switch (name) {
      case "key-in-memory":
        return this.#set(id, "finished");
      case "task-erred":
        return this.#set(id, "error", (r) => {
          r.exceptionText = exceptionTextOf(getField(op, "exception"));
          const tb = getField(op, "traceback");
          // A traceback is a pickle of frames from Python; only a plain string is worth showing.
          if (typeof tb === "string") r.tracebackText = tb;
          else delete r.tracebackText;
        });
      case "lost-data":
        // All replicas are gone; the scheduler recomputes it if someone still wants it.
        return this.#set(id, "lost");
      case "task-retried":
        return this.#set(id, "pending", (r) => {
          delete r.exceptionText;
          delete r.tracebackText;
        });
      case "cancelled-key":
        return this.#set(id, "cancelled", (r) => (r.reason ??= "cancelled"));
      default:
        return [];
    }
  }

  #set(id: string, status: FutureStatus, update?: (r: KeyRecord) => void): Resolution[] {
    const rec = this.#keys.get(id);
    if (!rec) return [];
    // A cancelled key stays cancelled: a late key-in-memory must not revive a future whose
    // waiters were already rejected (the scheduler may be mid-way through forgetting it).
    if (rec.status === "cancelled") return [];
    rec.status = status;
    if (status !== "cancelled") delete rec.reason;
    update?.(rec);
    return [{ id, status }];
  }
}

/** The key behind an id (re-exported so the shell needs one import). */
export { keyFromId, keyId };
