// Cross-runtime check of the canonical encoding: an independent implementation of "format 1"
// written in Python from the module header of src/tokens.ts (not from its code) must give the
// same keys and tokens as the TS encoder + Wasm MD5. If the header and the code disagree, or
// the keys depend on something the format does not mention, this fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runPython } from "./helpers/env.ts";
import { taskKey, tokenize } from "../src/tokens.ts";
import { tuple } from "../src/protocol/values.ts";

const PY_FORMAT_1 = String.raw`
import hashlib, math, struct, sys

def uv(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

SAFE = 2**53 - 1

def num(v):
    # JS has one number type: an integral float in the safe range is an integer; -0.0 is not.
    if isinstance(v, float):
        neg_zero = v == 0 and math.copysign(1, v) < 0
        if neg_zero or not (v.is_integer() and abs(v) <= SAFE):
            if v != v:
                return b"D" + bytes.fromhex("000000000000f87f")
            return b"D" + struct.pack("<d", v)
    n = int(v)
    return b"I" + uv(n) if n >= 0 else b"J" + uv(-1 - n)

def enc(v):
    if v is None: return b"N"
    if v is True: return b"T"
    if v is False: return b"F"
    if isinstance(v, (int, float)): return num(v)
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        return b"S" + uv(len(b)) + b
    if isinstance(v, bytes): return b"Y" + uv(len(v)) + v
    if isinstance(v, tuple): return b"P" + uv(len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, list): return b"L" + uv(len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        entries = sorted(enc(str(k)) + enc(x) for k, x in v.items())
        return b"O" + uv(len(v)) + b"".join(entries)
    if isinstance(v, (set, frozenset)):
        return b"E" + uv(len(v)) + b"".join(sorted(enc(x) for x in v))
    raise TypeError(type(v))

def func_name(fn):
    if "#" in fn:
        return fn.rsplit("#", 1)[1].rsplit(".", 1)[-1]
    return fn.replace(":", "/").rsplit("/", 1)[-1]

def task_key(fn, args, kwargs=None):
    body = b"\x01" + b"X" + enc(fn) + uv(len(args)) + b"".join(enc(a) for a in args) + enc(kwargs or {})
    return func_name(fn) + "-" + hashlib.md5(body).hexdigest()

def tokenize(*values):
    return hashlib.md5(b"\x01" + enc(tuple(values))).hexdigest()

print(task_key("tasks.js#inc", [1]))
print(task_key("wasm:abc#add", [1, 2], {"z": 1}))
print(task_key("tasks.js#resize", [("x", 0), {"w": 640, "h": 480}], {"mode": "fast"}))
print(task_key("m.js#ns.load", ["é😀\ud800", None, True, False, -1, -(2**53 - 1), 2**53 - 1, 2.0**53, 1.5, -0.0, float("nan"), float("-inf")]))
print(task_key("tasks.js#sum", [[1, [2, [3, ()]]], b"\x00\xff", {"b": {"y": 1, "x": [None]}, "a": set(["q", "p"])}], {"axis": 0, "keepdims": False}))
print(task_key("inc", ["x" * 200, {str(i): i for i in range(20)}]))
print(tokenize(1))
print(tokenize("a", ("b", 2), [3.25]))
`;

test("a Python implementation of format 1 gives the same keys and tokens", () => {
  const lines = runPython(PY_FORMAT_1).toString("utf8").trim().split("\n");
  const ours = [
    taskKey("tasks.js#inc", [1]),
    taskKey("wasm:abc#add", [1, 2], { z: 1 }),
    taskKey("tasks.js#resize", [tuple<unknown>("x", 0), { w: 640, h: 480 }], { mode: "fast" }),
    taskKey("m.js#ns.load", ["é😀\ud800", null, true, false, -1, -(2 ** 53 - 1), 2 ** 53 - 1, 2 ** 53, 1.5, -0, NaN, -Infinity]),
    taskKey("tasks.js#sum", [[1, [2, [3, tuple()]]], new Uint8Array([0, 255]), { b: { y: 1, x: [null] }, a: new Set(["q", "p"]) }], { axis: 0, keepdims: false }),
    taskKey("inc", ["x".repeat(200), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [String(i), i]))]),
    tokenize(1),
    tokenize("a", tuple<unknown>("b", 2), [3.25]),
  ];
  assert.deepEqual(lines, ours);
});
