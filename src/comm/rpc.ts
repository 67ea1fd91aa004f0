// Request/reply over one comm (distributed/core.py `send_recv`), and the reading of dask's
// error replies. DASK-PROTOCOL §5.1: a request is a map with "op"; "reply" defaults to true and
// Python clients always send it explicitly, so we do too; a handler exception comes back as
// {"status": "uncaught-error", "exception", "traceback", "exception_text", "traceback_text"}.
// No IO of its own: it drives a Comm it is given and never opens or pools anything (pool.ts does).
import type { Comm } from "./comm.ts";
import { RemoteError } from "./comm.ts";

/** A request: "op" plus keyword arguments (snake_case wire names, passed through). */
export type RpcRequest = { op: string; reply?: boolean; [arg: string]: unknown };

/** Reads a key of a decoded map, plain object or Map (maps with non-string keys decode to Map). */
export function getField(msg: unknown, key: string): unknown {
  if (msg instanceof Map) return msg.get(key);
  if (typeof msg === "object" && msg !== null && !Array.isArray(msg) && !(msg instanceof Uint8Array)) {
    return Object.hasOwn(msg, key) ? (msg as Record<string, unknown>)[key] : undefined;
  }
  return undefined;
}

/** The text of a field that Python fills with str/repr; anything else is rendered, not trusted. */
function text(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return new TextDecoder("utf-8", { fatal: false }).decode(v);
  return v === undefined || v === null ? "" : String(v);
}

/**
 * The RemoteError for an "uncaught-error" reply, or undefined for any other reply. Our text
 * fields are the only readable part: `exception` is a pickle from Python peers (§10.1).
 */
export function remoteErrorOf(op: string, reply: unknown): RemoteError | undefined {
  if (getField(reply, "status") !== "uncaught-error") return undefined;
  const exceptionText = text(getField(reply, "exception_text")) || text(getField(reply, "exception"));
  return new RemoteError(op, exceptionText, text(getField(reply, "traceback_text")), reply);
}

/**
 * Writes `request` and, unless `reply: false`, reads one reply and returns it. An
 * "uncaught-error" reply rejects with RemoteError (code DASK_ERR_RPC_REMOTE); the comm stays
 * usable, as it does on the Python side. Replies that are other error shapes
 * ({"status": "error", ...}, e.g. a duplicate worker name) are returned: they are data the
 * caller interprets. `close: true` in the request closes the comm after the reply (core.py).
 */
export async function sendRecv(comm: Comm, request: RpcRequest): Promise<unknown> {
  const msg = { ...request, reply: request.reply ?? true };
  await comm.write(msg);
  let reply: unknown = undefined;
  if (msg.reply) reply = await comm.read();
  if ((request as Record<string, unknown>)["close"] === true) await comm.close();
  const error = remoteErrorOf(request.op, reply);
  if (error) throw error;
  return reply;
}

/**
 * The §7.1 get_data exchange from the requester's side: the reply, then the bare "OK" ack the
 * responder waits for before serving anything else on this comm. No ack after "busy" (the
 * responder does not read one) or an error reply.
 */
export async function sendRecvAck(comm: Comm, request: RpcRequest): Promise<unknown> {
  const reply = await sendRecv(comm, request);
  if (getField(reply, "status") === "OK") await comm.write("OK");
  return reply;
}
