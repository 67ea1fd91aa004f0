// ConnectionPool (distributed/core.py `ConnectionPool`): reuses comms per address for RPCs,
// caps open comms across all addresses, and closes idle ones on request. One request at a time
// per comm (§5.1 "requests on one connection are strictly sequential"), so a comm is either
// lent out (occupied) or waiting in `available`.
// IO shell over an injected `connect` (registry.connect by default); owns no timers: callers
// decide when to `closeIdle()` (Python's `collect`), and wait for a slot without polling.
import type { Comm, CommOptions } from "./comm.ts";
import { CommError } from "./comm.ts";
import { ConfigError } from "../errors.ts";
import { normalizeAddress } from "./address.ts";
import { connect as registryConnect } from "./registry.ts";
import { sendRecv, sendRecvAck, type RpcRequest } from "./rpc.ts";

export interface PoolOptions {
  /** Most comms open at once, all addresses together (distributed.worker.connections... default 512). */
  limit?: number;
  /** Passed to every connect (timeouts, handshake overrides, codec, limits). */
  connectOptions?: CommOptions;
  /** Opens a handshaken comm; registry.connect unless a test injects another. */
  connect?: (address: string, opts: CommOptions) => Promise<Comm>;
  /** Label for the comms' `name`, as Python's `ConnectionPool.<op>`. */
  name?: string;
}

export class ConnectionPool {
  readonly limit: number;
  #connectOptions: CommOptions;
  #connect: (address: string, opts: CommOptions) => Promise<Comm>;
  #name: string;
  /** Idle, reusable comms per normalized address. */
  #available = new Map<string, Set<Comm>>();
  /** Comms lent to a caller, per address. */
  #occupied = new Map<string, Set<Comm>>();
  /** Connects in flight: they count against `limit` before they exist. */
  #connecting = 0;
  /** Callers waiting for a free slot, woken in order when a comm closes or returns. */
  #waiters: Array<() => void> = [];
  #closed = false;

  constructor(opts: PoolOptions = {}) {
    const limit = opts.limit ?? 512;
    if (!Number.isInteger(limit) || limit < 1) throw new ConfigError(`options.limit must be an integer >= 1, got ${String(limit)}`);
    this.limit = limit;
    this.#connectOptions = opts.connectOptions ?? {};
    this.#connect = opts.connect ?? registryConnect;
    this.#name = opts.name ?? "ConnectionPool";
  }

  /** Open comms: idle + lent out + being opened. */
  get open(): number {
    return this.#count(this.#available) + this.#count(this.#occupied) + this.#connecting;
  }

  /** Idle comms waiting for reuse. */
  get idle(): number {
    return this.#count(this.#available);
  }

  #count(m: Map<string, Set<Comm>>): number {
    let n = 0;
    for (const s of m.values()) n += s.size;
    return n;
  }

  /**
   * A comm to `address`, reused when one is idle, else newly opened. At the limit, idle comms
   * to other addresses are closed to make room (as core.py does), otherwise the call waits for
   * a comm to come back. Return it with `reuse` or close it.
   */
  async acquire(address: string): Promise<Comm> {
    const key = normalizeAddress(address);
    for (;;) {
      if (this.#closed) throw new CommError("DASK_ERR_POOL_CLOSED", "the connection pool is closed");
      const idle = this.#available.get(key);
      if (idle) {
        for (const comm of idle) {
          idle.delete(comm);
          if (comm.closed) continue; // the peer hung up while it idled
          this.#lend(key, comm);
          return comm;
        }
      }
      if (this.open < this.limit) break;
      if (this.#closeOneIdle()) continue;
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
    this.#connecting++;
    try {
      const comm = await this.#connect(key, this.#connectOptions);
      comm.name = `${this.#name}.${key}`;
      if (this.#closed) {
        comm.abort();
        throw new CommError("DASK_ERR_POOL_CLOSED", "the connection pool is closed");
      }
      this.#lend(key, comm);
      return comm;
    } finally {
      this.#connecting--;
      this.#wake();
    }
  }

  /** Gives a comm back after a completed exchange; a closed one is just dropped. */
  reuse(address: string, comm: Comm): void {
    const key = normalizeAddress(address);
    this.#occupied.get(key)?.delete(comm);
    if (comm.closed || this.#closed) {
      comm.abort();
    } else {
      let set = this.#available.get(key);
      if (!set) this.#available.set(key, (set = new Set()));
      set.add(comm);
    }
    this.#wake();
  }

  /**
   * Runs `fn` on a pooled comm. The comm returns to the pool if `fn` succeeds or fails with a
   * RemoteError (the peer answered, so the exchange completed); on any other failure it is
   * aborted, since it may be mid-message.
   */
  async withComm<T>(address: string, fn: (comm: Comm) => Promise<T>): Promise<T> {
    const comm = await this.acquire(address);
    try {
      const out = await fn(comm);
      this.reuse(address, comm);
      return out;
    } catch (error) {
      if ((error as { code?: string }).code === "DASK_ERR_RPC_REMOTE") this.reuse(address, comm);
      else {
        comm.abort();
        this.reuse(address, comm);
      }
      throw error;
    }
  }

  /** One RPC on a pooled comm (Python's `pool(address).op(**kwargs)`). */
  call(address: string, request: RpcRequest): Promise<unknown> {
    return this.withComm(address, (comm) => sendRecv(comm, request));
  }

  /** get_data-style RPC: the reply, then the "OK" ack on the same comm (§7.1). */
  callWithAck(address: string, request: RpcRequest): Promise<unknown> {
    return this.withComm(address, (comm) => sendRecvAck(comm, request));
  }

  /** Closes every idle comm (Python's `collect`); lent comms are untouched. */
  async closeIdle(): Promise<void> {
    const comms: Comm[] = [];
    for (const set of this.#available.values()) comms.push(...set);
    this.#available.clear();
    await Promise.all(comms.map((c) => closePolitely(c)));
    this.#wake();
  }

  /** Closes idle and lent comms to one address (Python's `remove`, e.g. after a worker left). */
  async removeAddress(address: string): Promise<void> {
    const key = normalizeAddress(address);
    const comms = [...(this.#available.get(key) ?? []), ...(this.#occupied.get(key) ?? [])];
    this.#available.delete(key);
    this.#occupied.delete(key);
    for (const c of comms) c.abort();
    this.#wake();
  }

  /** Closes everything; later acquires reject with DASK_ERR_POOL_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    const idle: Comm[] = [];
    for (const set of this.#available.values()) idle.push(...set);
    this.#available.clear();
    for (const set of this.#occupied.values()) for (const c of set) c.abort();
    this.#occupied.clear();
    await Promise.all(idle.map((c) => closePolitely(c)));
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w();
  }

  #lend(key: string, comm: Comm): void {
    let set = this.#occupied.get(key);
    if (!set) this.#occupied.set(key, (set = new Set()));
    set.add(comm);
  }

  #closeOneIdle(): boolean {
    for (const [key, set] of this.#available) {
      for (const comm of set) {
        set.delete(comm);
        if (set.size === 0) this.#available.delete(key);
        void closePolitely(comm);
        return true;
      }
    }
    return false;
  }

  #wake(): void {
    const w = this.#waiters.shift();
    if (w) w();
  }
}

/**
 * Tells a dask server we are done with this comm before closing it, so it does not log a
 * broken connection: `{"op": "close", "reply": false}` (Python `rpc.close_comms`).
 */
export async function closePolitely(comm: Comm): Promise<void> {
  if (comm.closed) return;
  try {
    await comm.write({ op: "close", reply: false });
  } catch {
    // already gone: nothing to be polite to
  }
  await comm.close();
}
