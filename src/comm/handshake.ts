// The first message on every connection (DASK-PROTOCOL-2022.12 §3, MODERN-DELTA §2): both sides
// send {"compression", "python", "pickle-protocol"}, then read the peer's. Writing first on BOTH
// sides is what 2026 does and is compatible with 2022 (listener writes first, connector reads
// first): our bytes simply wait in the peer's buffer.
// Pure: building, validating and negotiating maps. `exchangeHandshake` only drives a Comm it is
// given; it opens nothing and owns no timers (the caller bounds it with its connect timeout).
import type { Comm, HandshakeInfo } from "./comm.ts";
import { CommError } from "./comm.ts";

/**
 * What we advertise by default: no compression (loopback lz4 costs more than it saves, DESIGN.md
 * "Performance"), and pickle protocol 4 so Python peers pickle without out-of-band buffers
 * (MODERN-DELTA §2 "Non-Python peer"). "python" is informational, never read by dask.
 */
export const DEFAULT_HANDSHAKE: Readonly<Record<string, unknown>> = Object.freeze({
  compression: null,
  python: [3, 11, 2],
  "pickle-protocol": 4,
});

/** Our handshake map: defaults with overrides merged on top (Python's `handshake_overrides`). */
export function localHandshake(overrides?: Record<string, unknown>): Record<string, unknown> {
  return { ...DEFAULT_HANDSHAKE, ...overrides };
}

/** Reads a key from a decoded map that may be a plain object or a Map (non-string keys). */
function field(msg: unknown, key: string): unknown {
  if (msg instanceof Map) return msg.get(key);
  return (msg as Record<string, unknown>)[key];
}

function toRecord(msg: Map<unknown, unknown> | Record<string, unknown>): Record<string, unknown> {
  if (!(msg instanceof Map)) return msg;
  const out: Record<string, unknown> = {};
  for (const [k, v] of msg) if (typeof k === "string") out[k] = v;
  return out;
}

/**
 * Checks the peer's map and computes what both agreed on (comm/core.py
 * `handshake_configuration`): pickle = min of both; compression = the shared string or null.
 * Python hangs silently when a key is missing (§3 "Rules"); we fail loudly instead.
 */
export function negotiateHandshake(local: Record<string, unknown>, remote: unknown): HandshakeInfo {
  if (typeof remote !== "object" || remote === null || Array.isArray(remote)) {
    throw new CommError("DASK_ERR_HANDSHAKE", `handshake is not a map: ${describe(remote)}`);
  }
  const remoteCompression = field(remote, "compression");
  const remotePickle = field(remote, "pickle-protocol");
  if (remoteCompression === undefined) throw new CommError("DASK_ERR_HANDSHAKE", "peer handshake lacks 'compression'");
  if (remoteCompression !== null && typeof remoteCompression !== "string") {
    throw new CommError("DASK_ERR_HANDSHAKE", `peer 'compression' is ${describe(remoteCompression)}, not a string or nil`);
  }
  if (typeof remotePickle !== "number" || !Number.isInteger(remotePickle) || remotePickle < 0) {
    throw new CommError("DASK_ERR_HANDSHAKE", `peer 'pickle-protocol' is ${describe(remotePickle)}, not a non-negative integer`);
  }
  const localCompression = (local["compression"] ?? null) as string | null;
  const localPickle = local["pickle-protocol"] as number;
  return {
    compression: localCompression !== null && localCompression === remoteCompression ? localCompression : null,
    pickleProtocol: Math.min(localPickle, remotePickle),
    remote: toRecord(remote as Map<unknown, unknown> | Record<string, unknown>),
  };
}

function describe(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "nil";
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  try {
    return JSON.stringify(v)?.slice(0, 80) ?? typeof v;
  } catch {
    return typeof v;
  }
}

/**
 * Runs the exchange on a fresh comm: write ours, read theirs, negotiate, store the result on
 * `comm.handshakeInfo`. On failure the comm is aborted and the error rethrown.
 */
export async function exchangeHandshake(comm: Comm, overrides?: Record<string, unknown>): Promise<HandshakeInfo> {
  const local = localHandshake(overrides);
  try {
    // Not awaited before reading: a peer that also writes first is fine either way, and a
    // 2022 listener only reads after writing its own.
    const wrote = comm.write(local);
    wrote.catch(() => {}); // observed below; this only keeps an early rejection from being "unhandled"
    const remote = await comm.read();
    await wrote;
    const info = negotiateHandshake(local, remote);
    comm.handshakeInfo = info;
    return info;
  } catch (error) {
    comm.abort();
    throw error;
  }
}
