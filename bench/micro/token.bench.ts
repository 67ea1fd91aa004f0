// Token -> key hashing (src/tokens.ts over assembly/token.ts) against node:crypto (baseline:
// one createHash per input, as a straightforward implementation would) and hash-wasm's md5
// (one reused hasher: init/update/digest per input, its fastest synchronous use), plus the TS
// twin (DASK_WASM_BACKEND=js) as the pure-TS column.
// Workloads: batches of 1,000 small tasks (canonical encodings of ~40-100 bytes), and md5 of
// 64 B / 1 KiB / 64 KiB inputs. Each timed call checks its result (harness `check`).
import { createHash } from "node:crypto";
import { createMD5 } from "hash-wasm";
import { measure, check, type Table } from "../harness.ts";
import { canonicalEncode, taskKeys, funcName, md5, md5Batch, type TaskSpecInput } from "../../src/tokens.ts";
import { tuple } from "../../src/protocol/values.ts";
import { TokenJs } from "../../src/wasm/token.ts";

const BATCH = 1000;

/** 1,000 small tasks of a few shapes: a map over keys, binary ops, a call with kwargs. */
function smallTasks(): TaskSpecInput[] {
  const tasks: TaskSpecInput[] = [];
  for (let i = 0; i < BATCH; i++) {
    switch (i % 4) {
      case 0: tasks.push({ fn: "tasks.js#inc", args: [i] }); break;
      case 1: tasks.push({ fn: "tasks.js#add", args: [tuple<unknown>("load-3f1b2c4d", i), i * 1.5] }); break;
      case 2: tasks.push({ fn: "tasks.js#resize", args: [`image-${i}.png`], kwargs: { width: 640, height: 480 } }); break;
      default: tasks.push({ fn: "wasm:model-9a8b7c#score", args: [[i, i + 1, i + 2], "mean"] });
    }
  }
  return tasks;
}

/** The bytes taskKey hashes for one task: canonicalEncode of the task minus its 'X' framing is
 * not public, so the baselines hash canonicalEncode([fn, args, kwargs]) (same size +-2 bytes). */
function encodeTask(t: TaskSpecInput): Uint8Array {
  return canonicalEncode([t.fn, t.args, t.kwargs ?? {}]);
}

function input(len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

export async function run(): Promise<Table[]> {
  const hw = await createMD5();
  const hwHex = (b: Uint8Array): string => hw.init().update(b).digest("hex");
  const cryptoHex = (b: Uint8Array): string => createHash("md5").update(b).digest("hex");
  const twin = new TokenJs();
  const tables: Table[] = [];

  // --- keys: encode + hash + format, 1,000 tasks per call -----------------------------------
  const tasks = smallTasks();
  const encoded = tasks.map(encodeTask);
  const avg = encoded.reduce((s, e) => s + e.length, 0) / encoded.length;
  const names = tasks.map((t) => funcName(t.fn));
  const expected = taskKeys(tasks);
  const viaCrypto = encoded.map((e, i) => `${names[i]}-${cryptoHex(e)}`);
  check(viaCrypto[7]!.length === expected[7]!.length, "key shape");
  tables.push({
    title: "token: task keys, batches of 1,000 small tasks (encode + md5 + key string)",
    baseline: "node:crypto md5",
    caption: `Ops are keys. Canonical encodings average ${avg.toFixed(0)} B (min ${Math.min(...encoded.map((e) => e.length))}, max ${Math.max(...encoded.map((e) => e.length))}). ` +
      "Every row runs the same canonical encoder per task; rows differ in how the bytes are hashed.",
    rows: [
      measure("ours: taskKeys (one Wasm md5Batch call)", () => {
        const keys = taskKeys(tasks);
        check(keys[999] === expected[999], "taskKeys result");
        return BATCH;
      }),
      measure("node:crypto md5", () => {
        let last = "";
        for (let i = 0; i < BATCH; i++) last = `${names[i]}-${cryptoHex(encodeTask(tasks[i]!))}`;
        check(last === viaCrypto[999], "crypto result");
        return BATCH;
      }),
      measure("hash-wasm md5", () => {
        let last = "";
        for (let i = 0; i < BATCH; i++) last = `${names[i]}-${hwHex(encodeTask(tasks[i]!))}`;
        check(last === viaCrypto[999], "hash-wasm result");
        return BATCH;
      }),
    ],
  });

  // --- hashing only: the same 1,000 pre-encoded inputs -------------------------------------
  const digests = md5Batch(encoded);
  const lastHex = Buffer.from(digests.subarray(16 * 999)).toString("hex");
  tables.push({
    title: "token: md5 only, 1,000 pre-encoded small task encodings per call",
    baseline: "node:crypto md5",
    caption: `Ops are digests; inputs as above (avg ${avg.toFixed(0)} B). Ours includes copying the inputs into Wasm memory and the 16 KB result out.`,
    rows: [
      measure("ours: md5Batch (one Wasm call)", () => {
        const d = md5Batch(encoded);
        check(d[16 * 999] === digests[16 * 999] && d[16 * 999 + 15] === digests[16 * 999 + 15], "md5Batch result");
        return BATCH;
      }),
      measure("node:crypto md5", () => {
        let h = "";
        for (let i = 0; i < BATCH; i++) h = cryptoHex(encoded[i]!);
        check(h === lastHex, "crypto result");
        return BATCH;
      }),
      measure("hash-wasm md5", () => {
        let h = "";
        for (let i = 0; i < BATCH; i++) h = hwHex(encoded[i]!);
        check(h === lastHex, "hash-wasm result");
        return BATCH;
      }),
      measure("TS twin: TokenJs.digestMany", () => {
        const d = twin.digestMany(encoded);
        check(d[16 * 999] === digests[16 * 999] && d[16 * 999 + 15] === digests[16 * 999 + 15], "twin result");
        return BATCH;
      }),
    ],
  });

  // --- md5 by input size -------------------------------------------------------------------
  for (const [label, len] of [["64 B", 64], ["1 KiB", 1024], ["64 KiB", 65536]] as const) {
    const data = input(len);
    const want = cryptoHex(data);
    const many = Array.from({ length: len >= 65536 ? 16 : 256 }, () => data);
    tables.push({
      title: `token: md5 of ${label}`,
      baseline: "node:crypto md5",
      caption: `One op = one digest of ${len} bytes. "batch" rows hash ${many.length} inputs per call.`,
      rows: [
        measure("ours: md5 (one call per input)", () => {
          const d = md5(data);
          check(d.length === 16 && d[0] === parseInt(want.slice(0, 2), 16), "md5 result");
        }, { bytesPerOp: len }),
        measure(`ours: md5Batch (${many.length} per call)`, () => {
          const d = md5Batch(many);
          check(d[16 * (many.length - 1)] === parseInt(want.slice(0, 2), 16), "md5Batch result");
          return many.length;
        }, { bytesPerOp: len }),
        measure("node:crypto md5", () => {
          check(cryptoHex(data) === want, "crypto result");
        }, { bytesPerOp: len }),
        measure("hash-wasm md5", () => {
          check(hwHex(data) === want, "hash-wasm result");
        }, { bytesPerOp: len }),
        measure("TS twin: TokenJs.digestMany", () => {
          const d = twin.digestMany([data]);
          check(d[0] === parseInt(want.slice(0, 2), 16), "twin result");
        }, { bytesPerOp: len }),
      ],
    });
  }
  return tables;
}
