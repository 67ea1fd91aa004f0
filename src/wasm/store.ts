// Binding for the store index kernel (assembly/store.ts). Role: turn string keys into UTF-8 bytes
// in REGION_STORE_KEY, call the integer-only exports, and read the kernel's result block
// (previous state, spill candidates) straight from Wasm memory so that each store operation is
// ONE crossing. It owns its own CoreHandle (one instance per index, src/wasm/core.ts), so the
// index never shares memory with another kernel. It must not hold payloads or do IO: the byte
// store (src/store/byte-store.ts) owns values and the spill hook.
//
// `StoreIndex` is the contract both indexes meet: this Wasm one, and the Map-based TS twin in
// src/store/byte-store.ts that differential tests compare it against.
import { CoreHandle, type CoreInstance } from "./core.ts";
import { errorFromStatus, WasmError } from "../errors.ts";
import * as S from "../../assembly/status.ts";

/** Entry states, as in assembly/store.ts. */
export const STATE_FREE = 0;
export const STATE_MEMORY = 1;
export const STATE_SPILLED = 2;
export type EntryState = typeof STATE_FREE | typeof STATE_MEMORY | typeof STATE_SPILLED;

/**
 * The index of a byte store: key -> slot id, exact nbytes, state, LRU order of in-memory
 * entries, and the spill decision. Slots are small integers reused after delete. After put,
 * get, find and delete, `lastState` is the entry's state before the call (STATE_FREE if it
 * was absent); after put and unspill, `evictions()` lists the slots to spill, coldest first.
 */
export interface StoreIndex {
  readonly backend: "wasm" | "js";
  /** In-memory byte total above which entries are picked for spilling; 0 = never. */
  setTarget(bytes: number): void;
  /** Inserts or replaces `key` as the most recently used in-memory entry; returns its slot. */
  put(key: string, nbytes: number): number;
  /** Slot of key or -1; an in-memory entry becomes the most recently used. */
  get(key: string): number;
  /** Slot of key or -1, without touching LRU order. */
  find(key: string): number;
  /** Removes key; returns its former slot or -1. */
  delete(key: string): number;
  /** The slot's value was written to the spill hook. */
  markSpilled(slot: number): void;
  /** The slot's value was read back into memory; may produce evictions. */
  unspill(slot: number): void;
  nbytes(slot: number): number;
  readonly lastState: EntryState;
  evictions(): number[];
  /** In-memory slots, coldest first. */
  lruOrder(): number[];
  readonly count: number;
  readonly spilledCount: number;
  readonly memoryBytes: number;
  readonly spilledBytes: number;
  /** Bytes the index itself occupies (Wasm: its blocks; JS: 0, not measured). */
  readonly indexBytes: number;
  clear(): void;
}

interface StoreExports {
  storeVersion(): number;
  storeResultPtr(): number;
  storeSetTarget(bytes: number): void;
  storePut(keyLen: number, nbytes: number): number;
  storeGet(keyLen: number): number;
  storeFind(keyLen: number): number;
  storeDelete(keyLen: number): number;
  storeMarkSpilled(slot: number): number;
  storeUnspill(slot: number): number;
  storeNbytes(slot: number): number;
  storeLruOrder(): number;
  storeCount(): number;
  storeSpilledCount(): number;
  storeMemoryBytes(): number;
  storeSpilledBytes(): number;
  storeIndexBytes(): number;
  storeClear(): void;
}

const INDEX_VERSION = 1;
const encoder = new TextEncoder();

/** The Wasm index: one core instance, key bytes through REGION_STORE_KEY. */
export class WasmStoreIndex implements StoreIndex {
  readonly backend = "wasm" as const;
  readonly #handle = new CoreHandle();
  readonly #core: CoreInstance;
  readonly #x: StoreExports;
  readonly #result: number; // byte offset of the 16-byte result block
  #keyPtr = 0;
  #keyCap = 0;
  #keyView: Uint8Array | undefined; // the key region, re-made when the region or buffer changes
  // Own views, re-created when memory.buffer changes identity (growth detaches them).
  #buffer: ArrayBuffer;
  #u8: Uint8Array;
  #u32: Uint32Array;

  constructor() {
    this.#core = this.#handle.instance;
    this.#x = this.#core.exports as unknown as StoreExports;
    if (this.#x.storeVersion() !== INDEX_VERSION) {
      throw new WasmError("DASK_ERR_WASM_STATUS", `store index version ${this.#x.storeVersion()} in build/core.wasm, expected ${INDEX_VERSION}: rebuild the Wasm`);
    }
    this.#result = this.#x.storeResultPtr() >>> 0;
    this.#buffer = this.#core.exports.memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#u32 = new Uint32Array(this.#buffer);
  }

  #views(): void {
    const buf = this.#core.exports.memory.buffer;
    if (buf !== this.#buffer) {
      this.#buffer = buf;
      this.#u8 = new Uint8Array(buf);
      this.#u32 = new Uint32Array(buf);
      this.#keyView = undefined;
    }
  }

  /** Writes key's UTF-8 bytes at the region's start; returns their length. */
  #key(key: string): number {
    // UTF-8 needs at most 3 bytes per UTF-16 unit; reserve that so encodeInto never truncates.
    if (key.length * 3 > this.#keyCap) {
      this.#keyPtr = this.#core.region(S.REGION_STORE_KEY, key.length * 3);
      this.#keyCap = this.#core.exports.regionCapacity(S.REGION_STORE_KEY) >>> 0;
      this.#keyView = undefined;
    }
    if (this.#core.exports.memory.buffer !== this.#buffer) this.#views();
    // encodeInto on a cached view measured 58 ns for a 47-char ASCII key vs 166 ns for a
    // charCodeAt loop and 85 ns for Buffer.write (Node 24, 2026-11-23, /tmp prof run noted in
    // the report); creating the subarray per call costs more than the encoding.
    this.#keyView ??= this.#u8.subarray(this.#keyPtr, this.#keyPtr + this.#keyCap);
    return encoder.encodeInto(key, this.#keyView).written;
  }

  #check(status: number, what: string): number {
    if (status < 0 && status !== S.ERR_STORE_MISSING) throw errorFromStatus(status, what);
    return status < 0 ? -1 : status;
  }

  setTarget(bytes: number): void {
    this.#x.storeSetTarget(Number.isFinite(bytes) && bytes > 0 ? bytes : 0);
  }

  put(key: string, nbytes: number): number {
    return this.#check(this.#x.storePut(this.#key(key), nbytes), `put ${key}`);
  }

  get(key: string): number {
    return this.#check(this.#x.storeGet(this.#key(key)), `get ${key}`);
  }

  find(key: string): number {
    return this.#check(this.#x.storeFind(this.#key(key)), `find ${key}`);
  }

  delete(key: string): number {
    return this.#check(this.#x.storeDelete(this.#key(key)), `delete ${key}`);
  }

  markSpilled(slot: number): void {
    this.#check(this.#x.storeMarkSpilled(slot), `markSpilled ${slot}`);
  }

  unspill(slot: number): void {
    this.#check(this.#x.storeUnspill(slot), `unspill ${slot}`);
  }

  nbytes(slot: number): number {
    return this.#x.storeNbytes(slot);
  }

  get lastState(): EntryState {
    this.#views();
    return this.#u32[this.#result >>> 2]! as EntryState;
  }

  #readOut(count: number): number[] {
    this.#views();
    const ptr = this.#u32[(this.#result >>> 2) + 2]! >>> 2;
    return Array.from(this.#u32.subarray(ptr, ptr + count));
  }

  evictions(): number[] {
    this.#views();
    const count = this.#u32[(this.#result >>> 2) + 1]!;
    return count === 0 ? [] : this.#readOut(count);
  }

  lruOrder(): number[] {
    return this.#readOut(this.#x.storeLruOrder());
  }

  get count(): number {
    return this.#x.storeCount();
  }
  get spilledCount(): number {
    return this.#x.storeSpilledCount();
  }
  get memoryBytes(): number {
    return this.#x.storeMemoryBytes();
  }
  get spilledBytes(): number {
    return this.#x.storeSpilledBytes();
  }
  get indexBytes(): number {
    return this.#x.storeIndexBytes();
  }
  /** Size of this index's Wasm memory (it never shrinks); tests check payloads never land here. */
  get wasmMemoryBytes(): number {
    return this.#core.exports.memory.buffer.byteLength;
  }

  clear(): void {
    this.#x.storeClear();
  }
}
