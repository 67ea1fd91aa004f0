// Handshake building and negotiation (DASK-PROTOCOL §3, MODERN-DELTA §2), pure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_HANDSHAKE, localHandshake, negotiateHandshake } from "../../src/comm/handshake.ts";
import { decode } from "../../src/protocol/msgpack.ts";
import { FrameReader } from "../../src/protocol/frames.ts";
import { VECTORS_2022, VECTORS_2026 } from "../helpers/env.ts";
import { readFileSync } from "node:fs";

test("default handshake is what a non-Python peer should send", () => {
  assert.deepEqual(localHandshake(), { compression: null, python: [3, 11, 2], "pickle-protocol": 4 });
  assert.deepEqual(localHandshake({ "pickle-protocol": 5, compression: "lz4" }), { compression: "lz4", python: [3, 11, 2], "pickle-protocol": 5 });
  assert.equal(Object.isFrozen(DEFAULT_HANDSHAKE), true);
});

test("pickle protocol is the minimum; compression only when both name the same codec", () => {
  const cases: Array<[unknown, unknown, number, string | null]> = [
    [null, "lz4", 4, null],
    ["lz4", "lz4", 4, "lz4"],
    ["lz4", "zstd", 4, null],
    ["lz4", null, 4, null],
  ];
  for (const [local, remote, pickle, want] of cases) {
    const info = negotiateHandshake({ compression: local, "pickle-protocol": 5 }, { compression: remote, "pickle-protocol": pickle });
    assert.equal(info.compression, want, `${String(local)} vs ${String(remote)}`);
    assert.equal(info.pickleProtocol, 4);
  }
  assert.equal(negotiateHandshake({ compression: null, "pickle-protocol": 4 }, { compression: null, "pickle-protocol": 5 }).pickleProtocol, 4);
  assert.equal(negotiateHandshake({ compression: null, "pickle-protocol": 4 }, { compression: null, "pickle-protocol": 2 }).pickleProtocol, 2);
});

test("a Map handshake (non-string keys decode to Map) is accepted and kept", () => {
  const info = negotiateHandshake(localHandshake(), new Map<unknown, unknown>([["compression", null], ["pickle-protocol", 5], [1, "x"]]));
  assert.equal(info.pickleProtocol, 4);
  assert.deepEqual(info.remote, { compression: null, "pickle-protocol": 5 });
});

test("missing or mistyped required keys fail loudly (Python would hang)", () => {
  const bad: unknown[] = [
    null,
    "OK",
    [1, 2],
    {},
    { compression: null },
    { "pickle-protocol": 5 },
    { compression: 3, "pickle-protocol": 5 },
    { compression: null, "pickle-protocol": "5" },
    { compression: null, "pickle-protocol": -1 },
    { compression: null, "pickle-protocol": 4.5 },
  ];
  for (const remote of bad) assert.throws(() => negotiateHandshake(localHandshake(), remote), { code: "DASK_ERR_HANDSHAKE" }, JSON.stringify(remote));
});

test("every captured 2022 handshake (both directions) negotiates to no compression, pickle 4", () => {
  const index = JSON.parse(readFileSync(VECTORS_2022 + "index.json", "utf8")) as { messages: Array<{ file: string; ops: string[] }> };
  const shakes = index.messages.filter((m) => m.ops.includes("<handshake>"));
  assert.ok(shakes.length >= 2, "index.json lists handshakes");
  for (const m of shakes) {
    const reader = new FrameReader();
    reader.push(new Uint8Array(readFileSync(VECTORS_2022 + m.file)));
    const frames = reader.next();
    assert.ok(frames, m.file);
    const remote = decode(frames[0]!);
    // Python 2022 peers all prefer lz4 and speak pickle 5; we take neither.
    assert.equal((remote as Record<string, unknown>)["compression"], "lz4", m.file);
    const info = negotiateHandshake(localHandshake(), remote);
    assert.equal(info.compression, null, m.file);
    assert.equal(info.pickleProtocol, 4, m.file);
    assert.deepEqual(negotiateHandshake(localHandshake({ compression: "lz4", "pickle-protocol": 5 }), remote).compression, "lz4");
  }
});

test("every captured 2026.7 handshake negotiates to no compression, pickle 4", () => {
  let n = 0;
  for (const dir of ["python-client", "nonpython-probe"]) {
    const index = JSON.parse(readFileSync(`${VECTORS_2026}${dir}/index.json`, "utf8")) as { messages: Array<{ file: string; kind: string }> };
    for (const m of index.messages.filter((x) => x.kind === "handshake")) {
      const reader = new FrameReader();
      reader.push(new Uint8Array(readFileSync(`${VECTORS_2026}${dir}/${m.file}`)));
      const remote = decode(reader.next()![0]!);
      const info = negotiateHandshake(localHandshake(), remote);
      assert.equal(info.compression, null, m.file);
      assert.equal(info.pickleProtocol, Math.min(4, (remote as Record<string, number>)["pickle-protocol"]!), m.file);
      n++;
    }
  }
  assert.ok(n >= 4, `found ${n} handshakes`);
});
