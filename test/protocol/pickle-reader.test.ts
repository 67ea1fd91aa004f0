// Pickle reader: every captured run_spec / pickled value of the 2026.7.1 vectors, the run_spec
// gallery (checked against gallery.json's globals and descriptions), the 2022 exception pickles,
// and hostile input (truncation at every byte, unknown opcodes, random bytes, resource limits).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { PickleError } from "../../src/errors.ts";
import { describeException, OpaqueObject, readPickle } from "../../src/protocol/pickle-reader.ts";
import { writePickle } from "../../src/protocol/pickle-writer.ts";
import {
  AliasNode, ContainerNode, DataNodeNode, GlobalRef, TaskNode, TaskRefNode, dependencies,
} from "../../src/protocol/task-spec.ts";
import { isTuple, tuple } from "../../src/protocol/values.ts";
import { VECTORS_2022, VECTORS_2026, errorCode } from "../helpers/env.ts";

const GALLERY = VECTORS_2026 + "run_spec-gallery/";
type GalleryEntry = { description: string; pickle_file: string; out_of_band_frames: number; globals: string[]; opcodes: string[] };
const gallery: Record<string, GalleryEntry> = JSON.parse(readFileSync(GALLERY + "gallery.json", "utf8"));
const galleryBytes = (name: string): Uint8Array => new Uint8Array(readFileSync(GALLERY + gallery[name]!.pickle_file));
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

const code = (fn: () => unknown): string => errorCode(fn, PickleError);

/** Every GlobalRef and node class reachable from a read value, as dotted names (for gallery.json's "globals"). */
function globalsIn(v: unknown, out = new Set<string>(), seen = new Set<unknown>()): Set<string> {
  if (v === null || typeof v !== "object" || seen.has(v)) return out;
  seen.add(v);
  const ts = "dask._task_spec.";
  if (v instanceof GlobalRef) out.add(v.dotted);
  else if (v instanceof TaskNode) {
    out.add(ts + "Task");
    globalsIn(v.func, out, seen);
    for (const a of v.args) globalsIn(a, out, seen);
    for (const a of v.kwargs.values()) globalsIn(a, out, seen);
  } else if (v instanceof TaskRefNode) out.add(ts + "TaskRef");
  else if (v instanceof AliasNode) out.add(ts + "Alias");
  else if (v instanceof DataNodeNode) {
    out.add(ts + "DataNode");
    globalsIn(v.value, out, seen);
  } else if (v instanceof ContainerNode) {
    const cls = { list: "List", tuple: "Tuple", set: "Set", dict: "Dict" }[v.kind];
    out.add(ts + cls);
    // The pickled container state names these too (constructor/klass/func slots).
    out.add(ts + "NestedContainer.to_container");
    out.add(v.kind === "dict" ? ts + "Dict.constructor" : `builtins.${v.kind}`);
    if (v.kind === "dict") out.add("builtins.dict");
    for (const a of v.items) globalsIn(a, out, seen);
  } else if (Array.isArray(v) || v instanceof Set) for (const a of v) globalsIn(a, out, seen);
  else if (v instanceof Map) for (const [k, a] of v) (globalsIn(k, out, seen), globalsIn(a, out, seen));
  else if (!ArrayBuffer.isView(v)) for (const a of Object.values(v)) globalsIn(a, out, seen);
  return out;
}

test("every gallery run_spec reads into a TaskNode naming exactly gallery.json's globals", () => {
  for (const [name, g] of Object.entries(gallery)) {
    if (name === "main_function_cloudpickle") continue;
    const buffers = Array.from({ length: g.out_of_band_frames }, () => new Uint8Array(32));
    const spec = readPickle(galleryBytes(name), { buffers });
    assert.ok(spec instanceof TaskNode, name);
    const expected = new Set(g.globals.filter((x) => !x.startsWith("numpy.")));
    assert.deepEqual([...globalsIn(spec)].sort(), [...expected].sort(), name);
  }
});

test("gallery shapes match their descriptions", () => {
  const read = (n: string, buffers?: Uint8Array[]) => readPickle(galleryBytes(n), { buffers }) as TaskNode;
  // "sum([1,2,3])"
  let t = read("literal_sum");
  assert.equal((t.func as GlobalRef).dotted, "builtins.sum");
  assert.deepEqual(t.args, [[1, 2, 3]]);
  // "add(TaskRef('a'), 10)"
  t = read("taskref_dep");
  assert.ok(t.args[0] instanceof TaskRefNode && t.args[0].key === "a");
  assert.equal(t.args[1], 10);
  assert.deepEqual(dependencies(t), ["a"]);
  // "add(Alias('a'), 10)"
  t = read("alias_dep");
  assert.ok(t.args[0] instanceof AliasNode && t.args[0].target === "a");
  // "sorted([3,1,2], reverse=True, key=None)"
  t = read("kwargs");
  assert.deepEqual([...t.kwargs], [["reverse", true], ["key", null]]);
  // "len(List, Dict, Tuple, Set containers holding deps)"
  t = read("containers");
  assert.deepEqual(t.args.map((c) => (c as ContainerNode).kind), ["list", "dict", "tuple", "set"]);
  assert.deepEqual(dependencies(t).sort(), ["a", "b", "c", "d"]);
  // "len(DataNode('dn', [1, 2]))"
  t = read("datanode");
  assert.ok(t.args[0] instanceof DataNodeNode && t.args[0].key === "dn");
  assert.deepEqual((t.args[0] as DataNodeNode).value, [1, 2]);
  // "add(Task(None, mul, TaskRef('a'), 2), 1)"
  t = read("inline_subtask");
  const inner = t.args[0] as TaskNode;
  assert.ok(inner instanceof TaskNode && inner.key === null && (inner.func as GlobalRef).dotted === "_operator.mul");
  assert.deepEqual(dependencies(t), ["a"]);
  // "key ('x', 1, 2.5); dep on ('y', 0)"
  t = read("tuple_key");
  assert.ok(isTuple(t.key));
  assert.deepEqual(t.key, ["x", 1, 2.5]);
  assert.deepEqual(dependencies(t), [["y", 0]]);
  // "ints 0..2**70 incl. negatives": ints beyond 2^53 are bigints
  const ints = read("int_sizes").args[0] as unknown[];
  assert.ok(ints.includes(2147483647) && ints.includes(-2147483648));
  assert.ok(ints.includes(-(2n ** 70n)) || ints.some((x) => typeof x === "bigint"));
  // "set, frozenset, None, True, False"
  t = read("set_frozenset_none_bool");
  assert.deepEqual(t.args, [new Set([1, 2]), new Set([3]), null, true, false]);
  // "300 deps each referenced twice -> LONG_BINGET"
  t = read("long_binget");
  assert.equal(dependencies(t).length, 300);
  assert.ok(gallery["long_binget"]!.opcodes.includes("LONG_BINGET"));
  // "Task.fuse(...) -> func dask._task_spec._execute_subgraph": inner dict of Tasks, deps only outer
  t = read("fused_subgraph");
  assert.equal((t.func as GlobalRef).dotted, "dask._task_spec._execute_subgraph");
  assert.ok((t.args[0] as Record<string, unknown>)["inner-a"] instanceof TaskNode);
  assert.deepEqual(dependencies(t), ["x"]);
});

test("numpy argument with NEXT_BUFFER: refused without buffers, a typed array with them", () => {
  const bytes = galleryBytes("numpy_arg_oob");
  assert.equal(code(() => readPickle(bytes)), "DASK_ERR_PICKLE_BUFFER");
  const buf = new Uint8Array(new BigInt64Array([5n, -6n, 7n, 1n << 40n]).buffer);
  const t = readPickle(bytes, { buffers: [buf] }) as TaskNode;
  assert.ok(t.args[0] instanceof BigInt64Array);
  assert.deepEqual([...(t.args[0] as BigInt64Array)], [5n, -6n, 7n, 1n << 40n]);
  // A buffer of the wrong size for shape (4,) of i8 is refused.
  assert.equal(code(() => readPickle(bytes, { buffers: [new Uint8Array(31)] })), "DASK_ERR_PICKLE_NUMPY");
});

test("cloudpickled __main__ function is refused naming a cloudpickle global", () => {
  try {
    readPickle(galleryBytes("main_function_cloudpickle"));
    assert.fail("should refuse");
  } catch (e) {
    assert.ok(e instanceof PickleError && e.code === "DASK_ERR_PICKLE_GLOBAL");
    assert.match(e.message, /global cloudpickle\.cloudpickle\.\w+ is not allowed/);
  }
  // For display it reads as an opaque object in Task.func; nothing is executed.
  const t = readPickle(galleryBytes("main_function_cloudpickle"), { opaqueGlobals: true }) as TaskNode;
  assert.ok(t.func instanceof OpaqueObject && t.func.global === "cloudpickle.cloudpickle._make_function");
});

/** The pickle bytes (+ out-of-band buffers) of every pickle-carrying sub-frame in a 2026 capture. */
function capturedPickles(): Array<{ where: string; kind: string; pickle: Uint8Array; buffers: Uint8Array[]; raw?: boolean }> {
  const out: ReturnType<typeof capturedPickles> = [];
  for (const dir of ["python-client", "nonpython-probe"]) {
    const ix = JSON.parse(readFileSync(`${VECTORS_2026}${dir}/index.json`, "utf8"));
    for (const m of ix.messages) {
      for (const s of m.subframes ?? []) {
        const h = s.sub_header;
        const subs: Uint8Array[] = s.sub_frames_hex.map(hex);
        const where = `${dir}/${m.file}@${s.offset}`;
        if (s.kind === "__Pickled__") out.push({ where, kind: m.kind, pickle: hex(h["pickled-obj"].__bytes__), buffers: subs });
        else if (h.serializer === "pickle") out.push({ where, kind: m.kind, pickle: subs[0]!, buffers: subs.slice(1) });
        else if (h["is-collection"]) {
          // Each element serialized on its own; here every element is a one-frame pickle.
          h["sub-headers"].forEach((sh: { serializer: string }, i: number) => {
            assert.equal(sh.serializer, "pickle");
            out.push({ where: `${where}[${i}]`, kind: m.kind, pickle: subs[i]!, buffers: [] });
          });
        } else if (h.serializer === "dask" && h.type === "bytes") {
          // task-erred exception/traceback: bytes whose content is a pickle (see describeException).
          out.push({ where, kind: m.kind, pickle: subs[0]!, buffers: [], raw: true });
        } else assert.fail(`unexpected sub-frame in ${where}: ${JSON.stringify(h).slice(0, 200)}`);
      }
    }
  }
  return out;
}

test("every compute-task run_spec in the 2026 captures reads into a graph node", () => {
  let n = 0;
  for (const p of capturedPickles().filter((x) => x.kind.includes("compute-task"))) {
    n++;
    const bytes = p.pickle;
    if (Buffer.from(bytes).includes("cloudpickle")) {
      assert.equal(code(() => readPickle(bytes, { buffers: p.buffers })), "DASK_ERR_PICKLE_GLOBAL", p.where);
      continue;
    }
    const spec = readPickle(bytes, { buffers: p.buffers });
    assert.ok(spec instanceof TaskNode || spec instanceof AliasNode || spec instanceof DataNodeNode, p.where);
  }
  assert.ok(n >= 20, `found ${n} run_specs`);
});

test("every pickled scatter/result/metadata value in the 2026 captures reads; scheduler-bound graphs read opaquely", () => {
  let plain = 0, opaque = 0;
  for (const p of capturedPickles().filter((x) => !x.kind.includes("compute-task") && !x.raw)) {
    const text = Buffer.from(p.pickle).toString("latin1");
    // Graph pickles (dask._expr) and Future handles name classes a worker never needs: the strict
    // reader refuses them with a coded error and the opaque mode reads them without executing.
    if (/dask\._expr|distributed\.client/.test(text)) {
      assert.equal(code(() => readPickle(p.pickle, { buffers: p.buffers })), "DASK_ERR_PICKLE_GLOBAL", p.where);
      const v = readPickle(p.pickle, { buffers: p.buffers, opaqueGlobals: true });
      assert.ok(v instanceof OpaqueObject, p.where);
      opaque++;
    } else {
      readPickle(p.pickle, { buffers: p.buffers });
      plain++;
    }
  }
  assert.ok(plain >= 40 && opaque >= 10, `${plain} plain, ${opaque} opaque`);
});

test("task-erred exceptions (2026 captures) describe as 'class: message'", () => {
  const raws = capturedPickles().filter((x) => x.raw && x.pickle.length > 8);
  assert.ok(raws.length >= 3);
  for (const p of raws) assert.equal(describeException(p.pickle), "builtins.ZeroDivisionError: division by zero", p.where);
});

/** Frames of one 2022 wire message: u64 total, u64 nframes, nframes x u64 lengths, frames. */
function frames2022(b: Uint8Array): Uint8Array[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = Number(dv.getBigUint64(8, true));
  const out: Uint8Array[] = [];
  let off = 16 + 8 * n;
  for (let i = 0; i < n; i++) {
    const len = Number(dv.getBigUint64(16 + 8 * i, true));
    out.push(b.subarray(off, off + len));
    off += len;
  }
  return out;
}

test("2022 task-erred (vec:0079/0080): the Serialized exception pickle describes readably", () => {
  for (const file of ["0079_c01_worker1-to-scheduler_task-erred.bin", "0080_c03_scheduler-to-client_task-erred.bin"]) {
    const fr = frames2022(new Uint8Array(readFileSync(VECTORS_2022 + file)));
    // frames: [msg, exception sub-header, exception pickle, traceback sub-header, traceback pickle]
    assert.equal(describeException(fr[2]!), "builtins.ZeroDivisionError: division by zero", file);
    assert.equal(readPickle(fr[4]!), null);
  }
});

test("describeException: the hand-built protocol-2 GLOBAL pickle of DASK-PROTOCOL §10.2, and garbage", () => {
  const msg = Buffer.from("boom (pickled by hand)");
  const len = Buffer.alloc(4);
  len.writeUInt32LE(msg.length);
  const p = Buffer.concat([Buffer.from("\x80\x02cbuiltins\nValueError\nX", "latin1"), len, msg, Buffer.from([0x85, 0x52, 0x2e])]);
  assert.equal(describeException(new Uint8Array(p)), "builtins.ValueError: boom (pickled by hand)");
  const junk = describeException(new Uint8Array([0x80, 0x05, 0xff, 0x00]));
  assert.match(junk, /^unreadable exception pickle \(4 bytes, DASK_ERR_PICKLE_OPCODE\): 8005ff00$/);
  assert.equal(describeException(writePickle("ValueError: as a plain str")), "ValueError: as a plain str");
});

test("truncation at every byte of every gallery pickle is a coded TRUNCATED error", () => {
  for (const name of Object.keys(gallery)) {
    const b = galleryBytes(name);
    const buffers = [new Uint8Array(32)];
    for (let i = 0; i < b.length; i++) {
      assert.equal(code(() => readPickle(b.subarray(0, i), { buffers, opaqueGlobals: true })), "DASK_ERR_PICKLE_TRUNCATED", `${name} cut at ${i}`);
    }
  }
});

test("unknown opcodes, stack underflow, memo misses, bad protocol are coded", () => {
  assert.equal(code(() => readPickle(hex("8005ff2e"))), "DASK_ERR_PICKLE_OPCODE");
  try {
    readPickle(hex("80054b01492e"));
  } catch (e) {
    assert.equal((e as Error).message, "unknown opcode 0x49 at offset 4"); // INT (text) is outside the subset
  }
  assert.equal(code(() => readPickle(hex("80052e"))), "DASK_ERR_PICKLE_STACK");
  assert.equal(code(() => readPickle(hex("8005284b01612e"))), "DASK_ERR_PICKLE_STACK"); // APPEND needs a list below MARK
  assert.equal(code(() => readPickle(hex("800565"))), "DASK_ERR_PICKLE_STACK"); // APPENDS without MARK
  assert.equal(code(() => readPickle(hex("8005680a2e"))), "DASK_ERR_PICKLE_MEMO");
  assert.equal(code(() => readPickle(hex("80064e2e"))), "DASK_ERR_PICKLE_PROTOCOL");
  assert.equal(code(() => readPickle(hex("80054b01612e"))), "DASK_ERR_PICKLE_STACK");
  assert.equal(code(() => readPickle(hex("8005294b01612e"))), "DASK_ERR_PICKLE_INVALID"); // APPEND to a tuple
  assert.equal(code(() => readPickle(hex("80058c016f8c01739352" + "292e"))), "DASK_ERR_PICKLE_STACK");
});

test("protocol 0-4 structural opcodes: LIST, DICT, POP, POP_MARK, DUP, BINPUT/LONG_BINPUT, GLOBAL", () => {
  // MARK 1 2 LIST -> [1, 2]; MARK 'a' 1 DICT -> {'a': 1}; then POP drops the dict.
  assert.deepEqual(readPickle(hex("800228" + "4b014b02" + "6c" + "28" + "8c0161" + "4b01" + "64" + "30" + "2e")), [1, 2]);
  // MARK 1 2 POP_MARK 3 -> 3; DUP + TUPLE2 -> (3, 3)
  const t = readPickle(hex("8002" + "284b014b0231" + "4b03" + "32" + "86" + "2e")) as unknown[];
  assert.ok(isTuple(t));
  assert.deepEqual(t, [3, 3]);
  // BINPUT 7 / LONG_BINPUT 70000 then BINGET / LONG_BINGET; MEMOIZE counts distinct entries.
  assert.deepEqual(readPickle(hex("8002" + "8c0178" + "7107" + "8c0179" + "7270110100" + "6807" + "6a70110100" + "87" + "2e")), ["y", "x", "y"]);
  // GLOBAL with the protocol-2 module name __builtin__ is read as builtins.set.
  assert.deepEqual(readPickle(hex("8002" + Buffer.from("c__builtin__\nset\n").toString("hex") + "5d" + "284b014b0265" + "85" + "52" + "2e")), new Set([1, 2]));
  assert.equal(code(() => readPickle(hex("80028c02ff7a2e"))), "DASK_ERR_PICKLE_UTF8");
  assert.equal(code(() => readPickle(hex("800263627569"))), "DASK_ERR_PICKLE_TRUNCATED"); // GLOBAL without newline
});

test("globals: only the allow-list is callable; user functions only as Task.func", () => {
  // os.system(("echo",)) as REDUCE: refused, nothing runs.
  const osSystem = hex("80048c026f738c0673797374656d93288c046563686f7452" + "2e");
  assert.equal(code(() => readPickle(osSystem)), "DASK_ERR_PICKLE_GLOBAL");
  // A bare user global as a plain value (not Task.func) is refused ...
  assert.equal(code(() => readPickle(writePickle([new GlobalRef("os", "system")]))), "DASK_ERR_PICKLE_GLOBAL");
  // ... and accepted, kept by name, as a Task's function.
  const t = readPickle(writePickle(new TaskNode("k", new GlobalRef("mymod", "f"), [1]))) as TaskNode;
  assert.ok(t.func instanceof GlobalRef && t.func.dotted === "mymod.f");
  // apply() only as apply(Task, ...).
  const applyOther = hex("80048c0a6461736b2e7574696c738c056170706c7993288c026f738c0673797374656d93292974522e");
  assert.equal(code(() => readPickle(applyOther)), "DASK_ERR_PICKLE_GLOBAL");
});

test("dict keys: '__proto__' is an own property; non-str keys give a Map; tuple keys stay tuples", () => {
  const v = readPickle(writePickle(Object.fromEntries([["__proto__", { polluted: true }], ["a", 2]]))) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ["__proto__", "a"]);
  assert.deepEqual(Object.getOwnPropertyDescriptor(v, "__proto__")?.value, { polluted: true });
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  const m = readPickle(writePickle(new Map<unknown, unknown>([[tuple<unknown>("x", 1), "t"], [2, "n"]]))) as Map<unknown, unknown>;
  assert.ok(m instanceof Map);
  const [k0, k1] = [...m.keys()];
  assert.ok(isTuple(k0));
  assert.deepEqual([k0, k1, ...m.values()], [["x", 1], 2, "t", "n"]);
  // Python dict semantics: a repeated key keeps its first position and takes the last value.
  assert.deepEqual(readPickle(hex("80057d28" + "8c0161" + "4b01" + "8c0162" + "4b02" + "8c0161" + "4b03" + "752e")), { a: 3, b: 2 });
});

test("limits: maxBytes, maxDepth, maxMemo, huge declared lengths, repeated big buffers", () => {
  const big = writePickle("x".repeat(1000));
  assert.equal(code(() => readPickle(big, { maxBytes: 100 })), "DASK_ERR_PICKLE_LIMIT");
  // n nested lists: EMPTY_LIST x n then APPEND x (n - 1).
  const deep = (n: number): Uint8Array => {
    const b = new Uint8Array(2 + n + n - 1 + 1);
    b.set([0x80, 0x05]);
    b.fill(0x5d, 2, 2 + n);
    b.fill(0x61, 2 + n, 2 * n + 1);
    b[2 * n + 1] = 0x2e;
    return b;
  };
  assert.equal(code(() => readPickle(deep(5000))), "DASK_ERR_PICKLE_DEPTH");
  assert.equal(code(() => readPickle(deep(300), { maxDepth: 200 })), "DASK_ERR_PICKLE_DEPTH");
  assert.equal((readPickle(deep(900)) as unknown[]).length, 1);
  // A maxDepth beyond what the JS stack holds still ends in a coded error, not a RangeError.
  assert.equal(code(() => readPickle(deep(200_000), { maxDepth: 1e9 })), "DASK_ERR_PICKLE_DEPTH");
  // A 200,000-item tuple (MARK, NONE x 200000, TUPLE) reads: no argument spreading inside.
  const wide = new Uint8Array(200_005).fill(0x4e);
  wide.set([0x80, 0x05, 0x28]);
  wide.set([0x74, 0x2e], 200_003);
  assert.equal((readPickle(wide) as unknown[]).length, 200_000);
  const memo = hex("80054e949494942e");
  assert.equal(code(() => readPickle(memo, { maxMemo: 2 })), "DASK_ERR_PICKLE_LIMIT");
  // BINBYTES8 declaring 2^62 bytes: truncated, never allocated.
  assert.equal(code(() => readPickle(hex("80058e00000000000000402e"))), "DASK_ERR_PICKLE_TRUNCATED");
  assert.equal(code(() => readPickle(hex("80058bffffff7f"))), "DASK_ERR_PICKLE_LIMIT"); // LONG4 of 2 GiB
  // 5000 Task REDUCEs sharing one memoised 10,000-item args tuple: 50M elements if each copied.
  const shared = Buffer.concat([
    hex("800228"), Buffer.alloc(10_000, 0x4e), hex("7494" + "8c0f" + Buffer.from("dask._task_spec").toString("hex") + "8c045461736b9394" + "5d28"),
    Buffer.from("680168005294".repeat(5000), "hex").subarray(0), hex("652e"),
  ]);
  assert.equal(code(() => readPickle(new Uint8Array(shared))), "DASK_ERR_PICKLE_LIMIT");
  // One 64 KiB bytes referenced n times as a big-endian numpy buffer: each reference is a
  // byte-swapped copy, so many references exhaust the expansion budget; two are fine.
  assert.equal(code(() => readPickle(numpyRefs(1000))), "DASK_ERR_PICKLE_LIMIT");
  const two = readPickle(numpyRefs(2)) as Float64Array[];
  assert.equal(two.length, 2);
  assert.ok(two[0] instanceof Float64Array && two[0].length === 8192 && two[0] !== two[1]);
});

/** [_frombuffer(B, dtype('>f8'), (8192,), 'C') for _ in range(n)] sharing one memoised bytes B. */
function numpyRefs(n: number): Uint8Array {
  const g = (m: string, f: string) => [0x8c, m.length, ...Buffer.from(m), 0x8c, f.length, ...Buffer.from(f), 0x93];
  const parts: number[] = [0x94, 0x5d, 0x28]; // after BINBYTES: MEMOIZE, EMPTY_LIST, MARK
  for (let i = 0; i < n; i++) {
    parts.push(...g("numpy.core.numeric", "_frombuffer"), 0x28, 0x68, 0x00); // MARK, BINGET 0
    parts.push(...g("numpy", "dtype"), 0x8c, 0x02, ...Buffer.from("f8"), 0x89, 0x88, 0x87, 0x52); // dtype('f8', False, True)
    parts.push(0x28, 0x4b, 0x03, 0x8c, 0x01, 0x3e, 0x4e, 0x4e, 0x4e); // state (3, '>', None, None, None,
    parts.push(0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0x00, 0x74, 0x62); // -1, -1, 0) BUILD
    parts.push(0x4d, 0x00, 0x20, 0x85, 0x8c, 0x01, 0x43, 0x74, 0x52); // (8192,), 'C', TUPLE, REDUCE
  }
  parts.push(0x65, 0x2e);
  const head = Uint8Array.from([0x80, 0x05, 0x42, 0x00, 0x00, 0x01, 0x00]); // BINBYTES of 65536 zero bytes
  return Uint8Array.from(Buffer.concat([head, new Uint8Array(65536), Uint8Array.from(parts)]));
}

test("a 1 MB key repeated 200,000 times (as key and inside tuple keys) is not rehashed each time", { timeout: 20_000 }, () => {
  const big = Buffer.alloc(1 << 20, 0x78);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(big.length);
  const entry = Buffer.from("68004b01" + "6800854b02", "hex"); // key big -> 1; key (big,) -> 2
  const p = Buffer.concat([hex("80057d28"), hex("58"), len, big, hex("9430") /* MEMOIZE, POP */, ...Array(200_000).fill(entry), hex("752e")]);
  const d = readPickle(new Uint8Array(p)) as Map<unknown, unknown>;
  // The str key dedupes to one entry; tuples holding a >64-char str are compared by identity.
  assert.equal(d.size, 1 + 200_000);
  assert.equal(d.get("x".repeat(1 << 20)), 1);
});

test("fast-check: random bytes and mutated gallery pickles never crash or hang (only PickleError)", () => {
  const safely = (b: Uint8Array, opaque: boolean): void => {
    try {
      readPickle(b, { buffers: [new Uint8Array(32)], opaqueGlobals: opaque });
    } catch (e) {
      if (!(e instanceof PickleError)) throw e;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, opaque) => {
      safely(Uint8Array.from([0x80, 0x05, ...b]), opaque);
      safely(b, opaque);
    }),
    { numRuns: 3000 },
  );
  const names = Object.keys(gallery);
  fc.assert(
    fc.property(
      fc.constantFrom(...names), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(),
      (name, edits, opaque) => {
        const b = galleryBytes(name).slice();
        for (const [i, v] of edits) b[i % b.length] = v;
        safely(b, opaque);
      },
    ),
    { numRuns: 3000 },
  );
});

test("shared references stay shared; cycles through lists resolve", () => {
  // l = [b'xyz']; (l, l): one list object referenced twice.
  const shared = readPickle(hex("80055d94430378797a946194680086942e")) as unknown[][];
  assert.ok(isTuple(shared));
  assert.equal(shared[0], shared[1]);
  // l = []; l.append(l)
  const cyc = readPickle(hex("80055d9468006194" + "2e")) as unknown[];
  assert.equal(cyc[0], cyc);
});
