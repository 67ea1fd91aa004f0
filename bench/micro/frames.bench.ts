// TCP frame reading (src/protocol/frames.ts) with the Wasm prelude kernel vs its TS twin, against
// the floor any reader must pay: Buffer.copy of the same chunks into one preallocated buffer.
// Workloads (bytes delivered in 64 KiB chunks, as a Node socket delivers them):
//   - one 100 MB message: a 200-byte frame[0] + one 100,000,000-byte frame;
//   - a stream of 10,000 small messages of 200 bytes each (24-byte prelude + 176-byte frame);
//   - the prelude parse alone (one call per message), where the boundary crossing shows.
// Rows are interleaved, best of 3 rounds (see `interleaved`).
// Every timed iteration checks what it produced (message count, frame lengths, sampled bytes).
import { check, measure, type Measurement, type Table } from "../harness.ts";
import { FrameReader, packTcpMessage, parsePreludeJs, resolveFrameLimits, type FrameBackend } from "../../src/protocol/frames.ts";
import { WasmPreludeParser } from "../../src/wasm/frame.ts";

const CHUNK = 64 * 1024;
const ROUNDS = 3;

/**
 * Each row measured in ROUNDS interleaved rounds, keeping its fastest median: the machine is
 * shared (2 cores, other test suites running), and interference only ever makes a row slower,
 * so best-of-interleaved keeps the ratios from one run comparable.
 */
function interleaved(rows: Array<() => Measurement>): Measurement[] {
  const best: Measurement[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rows.forEach((row, i) => {
      const m = row();
      if (!best[i] || m.nsPerOp < best[i]!.nsPerOp) best[i] = m;
    });
  }
  return best;
}

/** Deterministic filler: benchmarks must not depend on Math.random. */
function filled(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

/** The stream cut into 64 KiB chunks, each its own buffer (as sockets hand them over). */
function chunked(stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0; p < stream.length; p += CHUNK) out.push(stream.slice(p, p + CHUNK));
  return out;
}

/** Feeds all chunks, polling after each push like a socket handler; returns the messages. */
function readAll(chunks: Uint8Array[], backend: FrameBackend): Uint8Array[][] {
  const r = new FrameReader({}, backend);
  const got: Uint8Array[][] = [];
  for (const c of chunks) {
    r.push(c);
    for (let m = r.next(); m !== null; m = r.next()) got.push(m);
  }
  return got;
}

function copyAll(chunks: Uint8Array[], total: number): Buffer {
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos); // Buffer.copy and TypedArray.set are the same memcpy in V8
    pos += c.length;
  }
  return out;
}

function bigMessage(): Table {
  const head = filled(200, 1);
  const body = filled(100_000_000, 2);
  const wire = packTcpMessage([head, body]);
  const chunks = chunked(wire);
  const probe = 77_777_777;
  const opts = { batches: 3, minBatchMs: 200, bytesPerOp: wire.length };
  const rows = interleaved([
    ...(["wasm", "js"] as const).map((b) => () =>
      measure(`ours (${b} prelude)`, () => {
        const m = readAll(chunks, b);
        check(m.length === 1 && m[0]![1]!.length === body.length && m[0]![1]![probe] === body[probe], `${b}: 100 MB frame`);
      }, opts),
    ),
    () =>
      measure("Buffer.copy into one buffer", () => {
        const out = copyAll(chunks, wire.length);
        check(out[216 + 200 + probe] === body[probe], "copy");
      }, opts),
  ]);
  return {
    title: "frames: one 100 MB message in 64 KiB chunks",
    baseline: "Buffer.copy into one buffer",
    caption: `${wire.length} bytes, ${chunks.length} chunks; frame[1] spans chunks, so ours allocates it once and copies each byte once.`,
    rows,
  };
}

function smallMessages(): Table {
  const COUNT = 10_000;
  const messages: Uint8Array[] = [];
  for (let i = 0; i < COUNT; i++) messages.push(packTcpMessage([filled(176, i + 1)]));
  const wire = Buffer.concat(messages);
  const chunks = chunked(wire);
  const opts = { batches: 7, minBatchMs: 200, bytesPerOp: wire.length };
  const rows = interleaved([
    ...(["wasm", "js"] as const).map((b) => () =>
      measure(`ours (${b} prelude)`, () => {
        const m = readAll(chunks, b);
        check(m.length === COUNT && m[COUNT - 1]![0]!.length === 176 && m[4321]![0]![8] === messages[4321]![24 + 8], `${b}: 10k messages`);
      }, opts),
    ),
    () =>
      measure("Buffer.copy into one buffer", () => {
        const out = copyAll(chunks, wire.length);
        check(out[wire.length - 1] === wire[wire.length - 1], "copy");
      }, opts),
  ]);
  return {
    title: "frames: 10,000 messages of 200 B in 64 KiB chunks",
    baseline: "Buffer.copy into one buffer",
    caption: `${wire.length} bytes, ${chunks.length} chunks; ${COUNT} prelude parses per op.`,
    rows,
  };
}

function preludeOnly(): Table {
  const limits = resolveFrameLimits();
  const wasm = new WasmPreludeParser();
  // prelude of a 3-frame message, inside a 64 KiB chunk (what the reader hands the parser)
  const chunk = new Uint8Array(CHUNK);
  chunk.set(packTcpMessage([filled(100, 1), filled(50, 2), filled(30, 3)]));
  const N = 10_000;
  const opts = { batches: 7, minBatchMs: 100 };
  const run = (name: string, parse: typeof parsePreludeJs): ReturnType<typeof measure> =>
    measure(name, () => {
      for (let i = 0; i < N; i++) {
        const r = parse(chunk, limits);
        check(r.status === 0 && r.lengths[2] === 30, name);
      }
      return N;
    }, opts);
  return {
    title: "frames: prelude parse alone (3 frames), per call",
    baseline: "js twin (parsePreludeJs)",
    rows: interleaved([() => run("wasm kernel (copy in + call + read out)", wasm.parse), () => run("js twin (parsePreludeJs)", parsePreludeJs)]),
  };
}

export function run(): Table[] {
  return [smallMessages(), preludeOnly(), bigMessage()];
}
