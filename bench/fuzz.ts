// `npm run fuzz [-- --count N --seed S]`: mutation fuzzing of every parser that reads bytes from
// the network: the TCP frame reader, the WebSocket frame reader, the msgpack decoder (both
// backends) and the pickle reader. Seeds are the real captured messages in ../shared/protocol.
//
// Pass criteria, checked for every input: the parser either returns or throws a coded DaskError
// (anything else is a crash: a TypeError, RangeError, a Wasm trap that escaped, ...); no single
// input takes longer than HANG_MS; RSS stays under MAX_RSS_BYTES. Exits non-zero on any failure
// and prints the offending input as hex so it can become a regression test.
// Deterministic: the same --seed gives the same inputs.
import { readFileSync, readdirSync } from "node:fs";
import { DaskError } from "../src/errors.ts";
import { FrameReader, WsFrameReader } from "../src/protocol/frames.ts";
import { createCodec } from "../src/protocol/msgpack.ts";
import { readPickle } from "../src/protocol/pickle-reader.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const COUNT = opt("count", 1_000_000); // mutated inputs per target
const SEED = opt("seed", 20261123);
const HANG_MS = 2_000; // a single parse this slow is reported as a hang (not a test threshold)
const MAX_RSS_BYTES = 2 * 1024 ** 3;

// xorshift32: deterministic, seedable
let state = SEED >>> 0 || 1;
function rand(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}
const below = (n: number): number => rand() % n;

// ---- seed corpus -----------------------------------------------------------------------------
const PROTOCOL = new URL("../../shared/protocol/", import.meta.url);
function binFiles(dir: URL, ext = ".bin"): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) out.push(...binFiles(new URL(`${e.name}/`, dir), ext));
    else if (e.name.endsWith(ext)) out.push(new Uint8Array(readFileSync(new URL(e.name, dir))));
  }
  return out;
}
const wire = [...binFiles(new URL("vectors-2022.12/", PROTOCOL)), ...binFiles(new URL("vectors-2026.7/", PROTOCOL))].filter(
  (b) => b.length >= 16,
);
const pickles = binFiles(new URL("vectors-2026.7/run_spec-gallery/", PROTOCOL), ".pickle").filter((b) => b[0] === 0x80);
/** Frames of a 2022/2026 wire message, split by an independent DataView parse (corpus only). */
function framesOf(msg: Uint8Array): Uint8Array[] {
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const n = Number(dv.getBigUint64(8, true));
  let off = 16 + 8 * n;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const len = Number(dv.getBigUint64(16 + 8 * i, true));
    frames.push(msg.subarray(off, off + len));
    off += len;
  }
  return frames;
}
const allFrames = wire.flatMap(framesOf);
const msgpackSeeds = allFrames.filter((f) => f.length > 0 && f[0] !== 0x80);
// pickles inside frames (pickled-obj of __Pickled__, pickle-serialized values) count too
const pickleSeeds = [...pickles, ...allFrames.filter((f) => f.length > 2 && f[0] === 0x80 && f[1]! <= 5)];

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc1, 0xc4, 0xc6, 0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x28, 0x2e, 0x52, 0x93, 0x95];

/** One mutation (or a few stacked) of a seed. */
function mutate(seed: Uint8Array, corpus: Uint8Array[]): Uint8Array {
  let b: Uint8Array = seed.slice();
  const rounds = 1 + below(4);
  for (let r = 0; r < rounds; r++) {
    const kind = below(9);
    const pos = b.length ? below(b.length) : 0;
    switch (kind) {
      case 0: // bit flip
        if (b.length) b[pos]! ^= 1 << below(8);
        break;
      case 1: // interesting byte
        if (b.length) b[pos] = INTERESTING[below(INTERESTING.length)]!;
        break;
      case 2: // random byte
        if (b.length) b[pos] = below(256);
        break;
      case 3: // truncate
        b = b.subarray(0, pos);
        break;
      case 4: { // delete a run
        const len = Math.min(1 + below(16), b.length - pos);
        const c = new Uint8Array(b.length - len);
        c.set(b.subarray(0, pos));
        c.set(b.subarray(pos + len), pos);
        b = c;
        break;
      }
      case 5: { // insert random bytes
        const len = 1 + below(16);
        const c = new Uint8Array(b.length + len);
        c.set(b.subarray(0, pos));
        for (let i = 0; i < len; i++) c[pos + i] = below(256);
        c.set(b.subarray(pos), pos + len);
        b = c;
        break;
      }
      case 6: { // overwrite 1-8 bytes with a big length-like value (little or big endian)
        const width = [1, 2, 4, 8][below(4)]!;
        for (let i = 0; i < width && pos + i < b.length; i++) b[pos + i] = below(3) === 0 ? 0xff : below(256);
        break;
      }
      case 7: { // splice with another corpus member
        const other = corpus[below(corpus.length)]!;
        const at = other.length ? below(other.length) : 0;
        const c = new Uint8Array(pos + other.length - at);
        c.set(b.subarray(0, pos));
        c.set(other.subarray(at), pos);
        b = c;
        break;
      }
      default: { // duplicate a run (repeated structures, memo references)
        const len = Math.min(b.length - pos, 1 + below(32));
        const c = new Uint8Array(b.length + len);
        c.set(b.subarray(0, pos + len));
        c.set(b.subarray(pos, pos + len), pos + len);
        c.set(b.subarray(pos + len), pos + 2 * len);
        b = c;
      }
    }
  }
  return b;
}

// ---- targets -----------------------------------------------------------------------------------
// Limits small enough that a mutated length field is refused rather than honoured.
const LIMITS = { maxFrameBytes: 1 << 20, maxMessageBytes: 4 << 20, maxFrames: 1024 };
const wasmCodec = createCodec("wasm");
const jsCodec = createCodec("js");
const DECODE_LIMITS = { maxStrBytes: 1 << 20, maxBinBytes: 1 << 20, maxArrayLength: 1 << 16, maxMapLength: 1 << 16 };

interface Target {
  name: string;
  corpus: Uint8Array[];
  run(input: Uint8Array): void;
}
const targets: Target[] = [
  {
    name: "tcp frame reader",
    corpus: wire,
    run(input) {
      const r = new FrameReader(LIMITS);
      let off = 0;
      while (off < input.length) {
        const n = 1 + below(Math.max(1, input.length - off));
        r.push(input.subarray(off, off + n));
        off += n;
        while (r.next() !== null) { /* drain */ }
      }
    },
  },
  {
    name: "websocket frame reader",
    corpus: wire,
    run(input) {
      // treat the mutated bytes as a sequence of WS messages: an 8-byte count message, then frames
      const r = new WsFrameReader(LIMITS);
      const frames = input.length >= 16 ? framesOfSafe(input) : [input];
      const count = new Uint8Array(8);
      new DataView(count.buffer).setBigUint64(0, BigInt(below(3) === 0 ? below(1 << 20) : frames.length), true);
      r.push(count);
      for (const f of frames) r.push(f);
    },
  },
  { name: "msgpack decode (wasm)", corpus: msgpackSeeds, run: (input) => void wasmCodec.decode(input, DECODE_LIMITS) },
  { name: "msgpack decode (js)", corpus: msgpackSeeds, run: (input) => void jsCodec.decode(input, DECODE_LIMITS) },
  { name: "pickle reader", corpus: pickleSeeds, run: (input) => void readPickle(input, { buffers: [new Uint8Array(64)] }) },
];

/** Frames of a possibly-corrupt message without trusting its lengths (for the WS target). */
function framesOfSafe(msg: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < msg.length; off += 1 + below(64)) out.push(msg.subarray(off, off + 1 + below(64)));
  return out;
}

// ---- run ---------------------------------------------------------------------------------------
let failures = 0;
let maxRss = 0;
const hex = (b: Uint8Array): string => Buffer.from(b.subarray(0, 512)).toString("hex") + (b.length > 512 ? "…" : "");
console.log(`fuzz: ${COUNT.toLocaleString()} mutated inputs per target, seed ${SEED}; corpus: ${wire.length} wire messages, ${msgpackSeeds.length} msgpack frames, ${pickleSeeds.length} pickles`);
console.log("| target | inputs | accepted | coded errors | crashes | hangs | slowest input | time |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const t of targets) {
  let ok = 0, coded = 0, crashes = 0, hangs = 0, slowest = 0;
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) {
    const input = mutate(t.corpus[below(t.corpus.length)]!, t.corpus);
    const s = performance.now();
    try {
      t.run(input);
      ok++;
    } catch (err) {
      if (err instanceof DaskError && typeof err.code === "string" && err.code.startsWith("DASK_ERR_")) coded++;
      else {
        crashes++;
        if (crashes <= 3) console.error(`CRASH in ${t.name}: ${(err as Error)?.stack ?? err}\ninput: ${hex(input)}`);
      }
    }
    const dt = performance.now() - s;
    if (dt > slowest) slowest = dt;
    if (dt > HANG_MS) {
      hangs++;
      if (hangs <= 3) console.error(`HANG in ${t.name}: ${dt.toFixed(0)} ms\ninput: ${hex(input)}`);
    }
    if ((i & 0xffff) === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  maxRss = Math.max(maxRss, process.memoryUsage().rss);
  failures += crashes + hangs;
  console.log(`| ${t.name} | ${COUNT.toLocaleString()} | ${ok.toLocaleString()} | ${coded.toLocaleString()} | ${crashes} | ${hangs} | ${slowest.toFixed(1)} ms | ${((performance.now() - t0) / 1000).toFixed(1)} s |`);
}
const total = COUNT * targets.length;
console.log(`\nfuzzed ${total.toLocaleString()} inputs in total; max RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB (bound ${MAX_RSS_BYTES / 2 ** 30} GiB)`);
if (maxRss > MAX_RSS_BYTES) {
  console.error("FAIL: memory bound exceeded");
  failures++;
}
if (failures) {
  console.error(`FAIL: ${failures} crashes/hangs`);
  process.exit(1);
}
console.log("PASS: no crash, no hang, bounded memory");
