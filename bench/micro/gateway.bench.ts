// What the gateway costs a worker that reaches peers through it (src/gateway/): the same dask
// comm (TCP framing + codec) over a direct loopback TCP socket (the baseline) and over a gateway
// channel (GatewayLink on Node's WebSocket -> Gateway -> TCP), measured in one run:
//   - bulk: one 64 MiB bytes message, until the receiving TCP server has every byte;
//   - round trips: 1,000 small messages echoed back one after another (latency).
// Each row is measured 3 times interleaved, keeping the best (a shared 2-core machine only
// ever makes a row slower). Every run checks the byte count / the echoed message.
import * as net from "node:net";
import type { Measurement, Table } from "../harness.ts";
import { check } from "../harness.ts";
import { Gateway } from "../../src/gateway/gateway.node.ts";
import { GatewayLink } from "../../src/gateway/link.ts";
import { commFromSocket } from "../../src/comm/tcp.node.ts";
import { parseAddress } from "../../src/comm/address.ts";
import type { Comm } from "../../src/comm/comm.ts";

const BULK = 64 * 1024 * 1024;
const TRIPS = 1_000;
const ROUNDS = 3;

/** A TCP server that counts bytes (bulk) or echoes them (round trips). */
async function server(mode: "sink" | "echo"): Promise<{ address: string; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer({ noDelay: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("data", (c: Buffer) => {
      received += c.length;
      if (mode === "echo") s.write(c);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    address: `tcp://127.0.0.1:${port}`,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

function tcpComm(address: string): Promise<Comm> {
  const { host, port } = parseAddress(address);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(commFromSocket(s)));
    s.once("error", reject);
  });
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

async function bulk(open: () => Promise<Comm>, sink: { received: () => number }): Promise<number> {
  const payload = new Uint8Array(BULK).fill(7);
  const comm = await open();
  const before = sink.received();
  const t0 = process.hrtime.bigint();
  await comm.write({ op: "bulk", data: payload });
  // frame 0 (msgpack with the 64 MiB bin) + the 8-byte count + 8-byte length: at least BULK bytes
  await until(() => sink.received() - before >= BULK);
  const ns = Number(process.hrtime.bigint() - t0);
  check(sink.received() - before < BULK + 4096, "bulk byte count");
  await comm.close();
  return ns;
}

async function trips(open: () => Promise<Comm>): Promise<number> {
  const comm = await open();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < TRIPS; i++) {
    await comm.write({ op: "ping", i });
    const back = (await comm.read()) as { i?: number };
    check(back.i === i, "echoed message");
  }
  const ns = Number(process.hrtime.bigint() - t0);
  await comm.close();
  return ns;
}

function row(name: string, nsTotal: number, ops: number, bytesPerOp?: number): Measurement {
  const nsPerOp = nsTotal / ops;
  const m: Measurement = { name, nsPerOp, opsPerSec: 1e9 / nsPerOp };
  if (bytesPerOp) m.bytesPerSec = (bytesPerOp * 1e9) / nsPerOp;
  return m;
}

export async function run(): Promise<Table[]> {
  const sink = await server("sink");
  const echo = await server("echo");
  // The gateway lets a worker open only the scheduler and its workers: here both test servers.
  const gwSink = new Gateway({ scheduler: sink.address, log: () => {} });
  const gwEcho = new Gateway({ scheduler: echo.address, log: () => {} });
  const [sinkUrl, echoUrl] = [await gwSink.start(), await gwEcho.start()];
  const linkSink = await GatewayLink.open(sinkUrl.replace("http", "ws") + "/worker");
  const linkEcho = await GatewayLink.open(echoUrl.replace("http", "ws") + "/worker");
  try {
    const best = new Map<string, number>();
    const keep = (name: string, ns: number): void => void best.set(name, Math.min(best.get(name) ?? Infinity, ns));
    for (let r = 0; r < ROUNDS; r++) {
      keep("bulk tcp", await bulk(() => tcpComm(sink.address), sink));
      keep("bulk gw", await bulk(() => linkSink.connect(parseAddress(sink.address)), sink));
      keep("trip tcp", await trips(() => tcpComm(echo.address)));
      keep("trip gw", await trips(() => linkEcho.connect(parseAddress(echo.address))));
    }
    return [
      {
        title: "gateway channel vs loopback TCP: one 64 MiB message",
        baseline: "TCP comm, loopback",
        caption: "The same dask comm (TCP framing, msgpack frame 0 holding 64 MiB of bytes) written once; time until the receiver has every byte.",
        rows: [row("TCP comm, loopback", best.get("bulk tcp")!, 1, BULK), row("gateway channel (WebSocket + relay + TCP)", best.get("bulk gw")!, 1, BULK)],
      },
      {
        title: "gateway channel vs loopback TCP: small message round trips",
        baseline: "TCP comm, loopback",
        caption: `${TRIPS.toLocaleString()} messages ({op, i}) each echoed back before the next is sent.`,
        rows: [row("TCP comm, loopback", best.get("trip tcp")!, TRIPS), row("gateway channel (WebSocket + relay + TCP)", best.get("trip gw")!, TRIPS)],
      },
    ];
  } finally {
    linkSink.close();
    linkEcho.close();
    await gwSink.close();
    await gwEcho.close();
    await sink.close();
    await echo.close();
  }
}
