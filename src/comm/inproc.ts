// In-process comms (distributed/comm/inproc.py): two queues joined back to back, messages passed
// by reference without encoding. For tests of everything above the transport (RPC, pool,
// server, batched streams) and for a worker and client living in one process.
// No IO: a process-global table of listeners keyed by name is the only state.
import type { Comm, CommOptions, HandshakeInfo, Listener } from "./comm.ts";
import { CommError, commClosed } from "./comm.ts";
import { MessageQueue } from "./queue.ts";

export class InProcComm implements Comm {
  readonly localAddress: string;
  readonly peerAddress: string;
  handshakeInfo: HandshakeInfo | undefined;
  name = "";
  /** Messages for us to read; the peer pushes into it. */
  readonly inbox = new MessageQueue();
  peer: InProcComm | undefined;
  #closed = false;

  constructor(localAddress: string, peerAddress: string) {
    this.localAddress = localAddress;
    this.peerAddress = peerAddress;
  }

  get closed(): boolean {
    return this.#closed;
  }

  read(): Promise<unknown> {
    return this.inbox.shift();
  }

  async write(msg: unknown): Promise<void> {
    if (this.#closed) throw commClosed(`write to ${this.peerAddress} after close`);
    this.peer!.inbox.push(msg);
  }

  async close(): Promise<void> {
    this.abort();
  }

  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.inbox.fail(commClosed(`closed locally (${this.peerAddress})`));
    // The peer reads what we already wrote, then sees the end (like a TCP FIN).
    this.peer?.inbox.fail(commClosed(`${this.localAddress} closed the connection`));
    // Writing to a peer that has gone fails like a reset socket.
    if (this.peer) this.peer.#closed = true;
  }
}

const listeners = new Map<string, (comm: InProcComm) => void>();
let counter = 0;

/** Listens on inproc://<name>; a name of "" or "0" gets a fresh unique one. */
export async function inprocListen(name: string, onComm: (comm: InProcComm) => void, _opts: CommOptions = {}): Promise<Listener> {
  const key = name === "" || name === "0" ? `local-${++counter}` : name;
  if (listeners.has(key)) throw new CommError("DASK_ERR_COMM_LISTEN", `inproc://${key} is already listening`);
  listeners.set(key, onComm);
  return {
    address: `inproc://${key}`,
    close: async () => void listeners.delete(key),
  };
}

/** Connects to inproc://<name>: hands the listener its end and returns ours. */
export async function inprocConnect(name: string, _opts: CommOptions = {}): Promise<Comm> {
  const onComm = listeners.get(name);
  if (!onComm) throw new CommError("DASK_ERR_COMM_CONNECT", `could not connect to inproc://${name}: nobody listens there`);
  const local = `inproc://${name}/client-${++counter}`;
  const ours = new InProcComm(local, `inproc://${name}`);
  const theirs = new InProcComm(`inproc://${name}`, local);
  ours.peer = theirs;
  theirs.peer = ours;
  onComm(theirs);
  return ours;
}
