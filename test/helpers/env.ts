// Paths and processes that tests share: the protocol material in ../shared beside the repo,
// Debian's Python (never the `python3` on PATH, which may be a pyenv shim without dask).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { DaskError } from "../../src/errors.ts";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const SHARED = fileURLToPath(new URL("../../../shared/", import.meta.url));
export const PROTOCOL = SHARED + "protocol/";
export const VECTORS_2022 = PROTOCOL + "vectors-2022.12/";
export const VECTORS_2026 = PROTOCOL + "vectors-2026.7/";
export const PYTHON = "/usr/bin/python3";

/** Every captured message file (.bin) under a vectors folder, sorted, with its bytes. */
export function vectorFiles(dir: string): Array<{ name: string; bytes: Uint8Array }> {
  const out: Array<{ name: string; bytes: Uint8Array }> = [];
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(`${d}${e.name}/`, `${prefix}${e.name}/`);
      else if (e.name.endsWith(".bin")) out.push({ name: prefix + e.name, bytes: new Uint8Array(readFileSync(d + e.name)) });
    }
  };
  walk(dir, "");
  return out;
}

/**
 * Runs a Python snippet with Debian's interpreter; stdin/stdout are bytes. Throws with stderr
 * if it exits non-zero. `-I` keeps user site-packages and PYTHON* variables out.
 */
export function runPython(code: string, input?: Uint8Array | string, env?: Record<string, string>): Buffer {
  const r = spawnSync(PYTHON, ["-I", "-c", code], {
    input,
    maxBuffer: 1 << 30,
    env: { ...process.env, ...env },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

/**
 * The frames of one whole captured message (u64 N | u64 n | n × u64 length | frames), parsed
 * with a plain DataView: an oracle independent of src/protocol/frames.ts. Throws if the lengths
 * do not cover the message exactly.
 */
export function splitWireFrames(msg: Uint8Array): Uint8Array[] {
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const n = Number(dv.getBigUint64(8, true));
  const frames: Uint8Array[] = [];
  let off = 16 + 8 * n;
  for (let i = 0; i < n; i++) {
    const len = Number(dv.getBigUint64(16 + 8 * i, true));
    frames.push(msg.subarray(off, off + len));
    off += len;
  }
  if (off !== msg.length) throw new Error(`frame lengths cover ${off} of ${msg.length} bytes`);
  return frames;
}

/**
 * The `code` of the error `fn` throws, asserting it is an instance of `Cls` (DaskError by
 * default); "no error" when it returns.
 */
export function errorCode(fn: () => unknown, Cls: abstract new (...args: never[]) => { code: string } = DaskError): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${String(err)}`);
    return (err as { code: string }).code;
  }
  return "no error";
}

/** A deterministic byte pattern that lz4 cannot shrink (xorshift32): tests never use Math.random. */
export function noise(n: number, seed = 7): Uint8Array {
  let x = seed;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
