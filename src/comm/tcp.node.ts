// TCP comms on Node: the only module in src/comm that imports node:net. It adapts a net.Socket
// to FramedComm's ByteTransport and a net.Server to a Listener; framing, codec and handshake
// live elsewhere (framed.ts, wire.ts, handshake.ts). Model: distributed/comm/tcp.py.
// Socket options as dask sets them (tcp.py `set_tcp_timeout`): TCP_NODELAY, SO_KEEPALIVE.
import * as net from "node:net";
import type { Comm, CommOptions, Listener } from "./comm.ts";
import { CommError } from "./comm.ts";
import { formatAddress } from "./address.ts";
import { FramedComm, type ByteTransport } from "./framed.ts";
import { DEFAULT_CODEC, tcpFraming } from "./wire.ts";

/** Keepalive probe delay: dask's TCP_KEEPIDLE is 10 s (tcp.py set_tcp_timeout). */
const KEEPALIVE_MS = 10_000;

function socketTransport(socket: net.Socket): ByteTransport {
  return {
    write(chunks) {
      return new Promise((resolve, reject) => {
        if (socket.destroyed) {
          reject(new CommError("DASK_ERR_COMM_CLOSED", "comm closed: socket destroyed"));
          return;
        }
        // cork/uncork: prelude + frames leave in as few segments as Node can manage.
        if (chunks.length > 1) socket.cork();
        for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]!);
        socket.write(chunks[chunks.length - 1]!, (err) => (err ? reject(new CommError("DASK_ERR_COMM_CLOSED", `comm closed during write: ${err.message}`, { cause: err })) : resolve()));
        if (chunks.length > 1) socket.uncork();
      });
    },
    // FIN after what is queued, then drop the socket: a peer that never closes its side must
    // not keep ours half-open (dask's TCP.close closes the whole stream).
    end: () => void socket.end(() => socket.destroy()),
    destroy: () => void socket.destroy(),
  };
}

function addr(host: string | undefined, port: number | undefined): string {
  // Node reports IPv4-mapped peers as "::ffff:1.2.3.4"; dask writes the dotted form.
  const h = (host ?? "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
  return formatAddress({ scheme: "tcp", host: h, port: port ?? 0 });
}

/** Wraps a connected socket (options set, data and close wired). */
export function commFromSocket(socket: net.Socket, opts: CommOptions = {}): FramedComm {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEPALIVE_MS);
  const comm = new FramedComm({
    transport: socketTransport(socket),
    framing: (opts.framing ?? tcpFraming)(opts.limits),
    codec: opts.codec ?? DEFAULT_CODEC,
    localAddress: addr(socket.localAddress, socket.localPort),
    peerAddress: addr(socket.remoteAddress, socket.remotePort),
  });
  socket.on("data", (chunk: Buffer) => comm.receive(chunk));
  socket.on("end", () => comm.ended());
  // 'error' is always followed by 'close'; record the cause first so reads see it.
  socket.on("error", (err) => comm.ended(err));
  socket.on("close", () => comm.ended());
  return comm;
}

/** Opens a TCP connection (no handshake: the registry does it for every transport). */
export function tcpConnect(host: string, port: number, opts: CommOptions = {}): Promise<Comm> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const onError = (err: Error): void => {
      socket.destroy();
      reject(new CommError("DASK_ERR_COMM_CONNECT", `could not connect to ${formatAddress({ scheme: "tcp", host, port })}: ${err.message}`, { cause: err }));
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(commFromSocket(socket, opts));
    });
  });
}

/**
 * Listens on host:port (0 = any free port). `onComm` gets each raw comm before its handshake;
 * the registry wraps it. Resolves once bound, with the real address.
 */
export function tcpListen(host: string, port: number, onComm: (comm: FramedComm) => void, opts: CommOptions = {}): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true }, (socket) => onComm(commFromSocket(socket, opts)));
    const onListenError = (err: Error): void =>
      reject(new CommError("DASK_ERR_COMM_LISTEN", `could not listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once("error", onListenError);
    server.listen({ host, port }, () => {
      server.off("error", onListenError);
      // Later server errors (EMFILE on accept...) must not crash the process; report them.
      server.on("error", (err) => opts.onError?.(err));
      const bound = server.address() as net.AddressInfo;
      resolve({
        address: addr(bound.address, bound.port),
        // server.close() stops accepting at once; its callback would wait for every accepted
        // socket to end, and comms already handed out are not ours to wait for.
        close: async () => void server.close(),
      });
    });
  });
}
