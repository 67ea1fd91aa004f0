// Scheme -> transport, plus the two entry points every caller uses: `connect(address)` and
// `listen(address, handler)`. Both run the handshake (handshake.ts) so a Comm handed out is
// always negotiated. Model: distributed/comm/registry.py + core.py `connect`/`Listener`.
// The TCP backend is loaded on first use with a dynamic import, so bundles for browsers and
// edges never pull node:net in; they register their own ("ws") with `registerBackend`.
// IO shell: owns the connect timeout timer; nothing else here touches time.
import type { Comm, CommHandler, CommOptions, Listener } from "./comm.ts";
import { CommError } from "./comm.ts";
import { parseAddress, type ParsedAddress } from "./address.ts";
import { exchangeHandshake } from "./handshake.ts";
import { inprocConnect, inprocListen } from "./inproc.ts";

/** A transport: opens raw comms (no handshake) and listens, handing out raw comms. */
export interface Backend {
  connect(address: ParsedAddress, opts: CommOptions): Promise<Comm>;
  listen(address: ParsedAddress, onComm: (comm: Comm) => void, opts: CommOptions): Promise<Listener>;
}

/** distributed.comm.timeouts.connect */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

const backends = new Map<string, Backend | (() => Promise<Backend>)>([
  ["inproc", { connect: (a, o) => inprocConnect(a.host, o), listen: (a, on, o) => inprocListen(a.host, on, o) }],
  [
    "tcp",
    async () => {
      const tcp = await import("./tcp.node.ts");
      return { connect: (a, o) => tcp.tcpConnect(a.host, a.port, o), listen: (a, on, o) => tcp.tcpListen(a.host, a.port, on, o) };
    },
  ],
  // dask's `--protocol ws` endpoint through the platform WebSocket (connect only: a worker that
  // serves peers listens on tcp, or through the gateway where it cannot listen at all).
  ...(["ws", "wss"] as const).map((scheme): [string, () => Promise<Backend>] => [
    scheme,
    async () => {
      const ws = await import("./ws.ts");
      return {
        connect: (a, o) => ws.wsConnect(scheme, a.host, a.port, o),
        listen: async () => {
          throw new CommError("DASK_ERR_ADDRESS", `dask-wasm cannot listen on ${scheme}://; listen on tcp:// (or through dask-wasm gateway)`);
        },
      };
    },
  ]),
]);

/** Adds or replaces the transport for a scheme (e.g. "ws" from a WebSocket module). */
export function registerBackend(scheme: string, backend: Backend | (() => Promise<Backend>)): void {
  backends.set(scheme, backend);
}

async function backendFor(scheme: string): Promise<Backend> {
  const entry = backends.get(scheme);
  if (!entry) throw new CommError("DASK_ERR_ADDRESS", `no transport for scheme ${JSON.stringify(scheme)}`);
  if (typeof entry !== "function") return entry;
  const loaded = await entry();
  backends.set(scheme, loaded);
  return loaded;
}

/**
 * Rejects with DASK_ERR_COMM_TIMEOUT after `ms`, calling `onTimeout` first (to abort whatever
 * was half-open). The timer is cleared when `work` settles either way.
 */
async function withTimeout<T>(work: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new CommError("DASK_ERR_COMM_TIMEOUT", `${what} did not finish within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Connects and handshakes; the comm's `handshakeInfo` is set. Python's `comm.core.connect`. */
export async function connect(address: string, opts: CommOptions = {}): Promise<Comm> {
  const parsed = parseAddress(address);
  const backend = await backendFor(parsed.scheme);
  let comm: Comm | undefined;
  const work = (async () => {
    comm = await backend.connect(parsed, opts);
    await exchangeHandshake(comm, opts.handshakeOverrides);
    return comm;
  })();
  // If the timer fires first, `work` may still settle later: swallow that outcome.
  work.catch(() => {});
  return withTimeout(work, opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, `connect to ${address}`, () => comm?.abort());
}

/**
 * Listens and hands every comm to `handler` after its handshake. A comm whose handshake fails
 * (bad bytes, missing keys, timeout) is aborted and reported to `opts.onError`; the listener
 * keeps serving the others.
 */
export async function listen(address: string, handler: CommHandler, opts: CommOptions = {}): Promise<Listener> {
  const parsed = parseAddress(address, 0);
  const backend = await backendFor(parsed.scheme);
  const report = opts.onError ?? (() => {});
  return backend.listen(
    parsed,
    (comm) => {
      // Only the handshake is timed; the handler may then serve this comm for hours.
      const shake = exchangeHandshake(comm, opts.handshakeOverrides);
      shake.catch(() => {}); // settled below or abandoned by the timeout
      withTimeout(shake, opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, `handshake from ${comm.peerAddress}`, () => comm.abort())
        .then(
          () => handler(comm),
          (error) => {
            comm.abort();
            report(error);
          },
        )
        .catch((error) => {
          // A handler that throws loses only its own comm.
          comm.abort();
          report(error);
        });
    },
    opts,
  );
}
