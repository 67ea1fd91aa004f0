// Node file-system SpillHook for ByteStore (cf. zict.File under distributed/spill.py): one file
// per key in a directory this object creates and owns. Role: IO only; it makes no decision about
// what to spill (the store's index does). Node-only (node:fs), so browser/edge bundles must not
// import it.
//
// File name: hex md5 of the key's UTF-8 bytes. Dask keys contain characters a file system may
// refuse ("('x', 0)", "/" in names) and may be longer than NAME_MAX; md5 gives a fixed, safe
// name, and a collision would need two keys with equal md5 in one worker.
// File format: u32 frame count, then u64 length per frame (little-endian, like the dask wire
// prelude), then the frames back to back. Written with one writev to a temporary name and
// renamed, so a failed or interrupted write never leaves a truncated file under the real name.
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writevSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreError } from "../errors.ts";
import type { SpillHook } from "./byte-store.ts";

export class DiskSpill implements SpillHook {
  readonly directory: string;
  #closed = false;
  // Usage counters for stats and tests; the store's index is the authority on what is spilled,
  // these only track what this directory holds (headers included).
  #files = 0;
  #bytes = 0;
  readonly #sizes = new Map<string, number>();

  /** Creates a fresh directory under `parent` (default: the OS temp dir). */
  constructor(parent: string = tmpdir()) {
    mkdirSync(parent, { recursive: true });
    this.directory = mkdtempSync(join(parent, "dask-wasm-spill-"));
  }

  #path(key: string): string {
    return join(this.directory, createHash("md5").update(key, "utf8").digest("hex"));
  }

  #open(): void {
    if (this.#closed) throw new StoreError("DASK_ERR_SPILL_CLOSED", `spill directory ${this.directory} was closed`);
  }

  /** Writes key's frames (replacing any earlier file); throws on any fs error, writing nothing. */
  write(key: string, frames: readonly Uint8Array[]): void {
    this.#open();
    const head = new Uint8Array(4 + 8 * frames.length);
    const dv = new DataView(head.buffer);
    dv.setUint32(0, frames.length, true);
    let size = head.byteLength;
    frames.forEach((f, i) => {
      dv.setBigUint64(4 + 8 * i, BigInt(f.byteLength), true);
      size += f.byteLength;
    });
    const path = this.#path(key);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      const parts = [head, ...frames] as NodeJS.ArrayBufferView[];
      let written = 0;
      // writev may write less than asked (large buffers); continue from where it stopped.
      while (written < size) {
        let skip = written;
        const rest: NodeJS.ArrayBufferView[] = [];
        for (const p of parts) {
          const n = p.byteLength;
          if (skip >= n) {
            skip -= n;
            continue;
          }
          const u = p as Uint8Array;
          rest.push(skip > 0 ? u.subarray(skip) : u);
          skip = 0;
        }
        written += writevSync(fd, rest);
      }
    } catch (err) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
    closeSync(fd);
    renameSync(tmp, path);
    const old = this.#sizes.get(key);
    if (old === undefined) this.#files++;
    this.#bytes += size - (old ?? 0);
    this.#sizes.set(key, size);
  }

  /**
   * The frames of key, as views over one buffer read in a single call (no per-frame copy).
   * Every length is checked against the file size so a truncated file is an error, never
   * short or shifted frames.
   */
  read(key: string): Uint8Array[] {
    this.#open();
    const buf = readFileSync(this.#path(key));
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const bad = (): StoreError => new StoreError("DASK_ERR_SPILL_CORRUPT", `spill file for ${JSON.stringify(key)} is truncated or corrupt`);
    if (bytes.byteLength < 4) throw bad();
    const n = dv.getUint32(0, true);
    let off = 4 + 8 * n;
    if (off > bytes.byteLength) throw bad();
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const len = Number(dv.getBigUint64(4 + 8 * i, true));
      if (off + len > bytes.byteLength) throw bad();
      frames.push(bytes.subarray(off, off + len));
      off += len;
    }
    if (off !== bytes.byteLength) throw bad();
    return frames;
  }

  /** Deletes key's file; throws (ENOENT) if there is none, so a store bug cannot go unnoticed. */
  remove(key: string): void {
    this.#open();
    unlinkSync(this.#path(key));
    const old = this.#sizes.get(key);
    if (old !== undefined) {
      this.#files--;
      this.#bytes -= old;
      this.#sizes.delete(key);
    }
  }

  /** Files and bytes currently on disk (headers included). */
  usage(): { files: number; bytes: number } {
    return { files: this.#files, bytes: this.#bytes };
  }

  /** Removes the directory and every file in it; later calls throw DASK_ERR_SPILL_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    rmSync(this.directory, { recursive: true, force: true });
  }
}
