// Address parsing against the cases distributed/comm/addressing.py handles.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatAddress, normalizeAddress, parseAddress } from "../../src/comm/address.ts";
import { DaskError } from "../../src/errors.ts";

test("tcp host:port, with and without scheme", () => {
  assert.deepEqual(parseAddress("tcp://127.0.0.1:8786"), { scheme: "tcp", host: "127.0.0.1", port: 8786 });
  assert.deepEqual(parseAddress("10.0.0.5:1234"), { scheme: "tcp", host: "10.0.0.5", port: 1234 });
  assert.deepEqual(parseAddress("TCP://example.org:0"), { scheme: "tcp", host: "example.org", port: 0 });
  assert.deepEqual(parseAddress("ws://h:80"), { scheme: "ws", host: "h", port: 80 });
});

test("IPv6 needs brackets and round-trips with them", () => {
  assert.deepEqual(parseAddress("tcp://[::1]:8786"), { scheme: "tcp", host: "::1", port: 8786 });
  assert.equal(formatAddress({ scheme: "tcp", host: "::1", port: 8786 }), "tcp://[::1]:8786");
  assert.throws(() => parseAddress("tcp://::1:8786"), { code: "DASK_ERR_ADDRESS" });
});

test("default port fills a missing one; otherwise a port is required", () => {
  assert.equal(parseAddress("tcp://h", 0).port, 0);
  assert.throws(() => parseAddress("tcp://h"), { code: "DASK_ERR_ADDRESS" });
});

test("inproc locations are opaque", () => {
  assert.deepEqual(parseAddress("inproc://abc/1/2"), { scheme: "inproc", host: "abc/1/2", port: -1 });
  assert.equal(formatAddress(parseAddress("inproc://abc")), "inproc://abc");
});

test("bad addresses throw a coded DaskError", () => {
  for (const bad of ["", "tcp://", "tcp://:80", "tcp://h:", "tcp://h:x", "tcp://h:65536", "tcp://[::1", "tcp://[::1]x", "1bad://h:1", "inproc://"]) {
    assert.throws(
      () => parseAddress(bad),
      (e: unknown) => e instanceof DaskError && e.code === "DASK_ERR_ADDRESS",
      bad,
    );
  }
});

test("normalize gives one spelling per endpoint (pool keys)", () => {
  assert.equal(normalizeAddress("127.0.0.1:5"), "tcp://127.0.0.1:5");
  assert.equal(normalizeAddress("TCP://127.0.0.1:5"), "tcp://127.0.0.1:5");
});
