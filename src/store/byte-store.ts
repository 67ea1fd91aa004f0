// The worker's data store: key -> frames (the serialized value) + an opaque header, with exact
// nbytes, LRU order, a memory limit and a spill hook that moves the coldest values out and back.
// Model: distributed/spill.py SpillBuffer over zict (fast = LRU dict in memory, slow = File on
// disk, `target` = memory.target × memory_limit): a put goes to fast; when fast's total passes
// the target the least recently used values go to slow; a get of a slow value brings it back
// (and may push others out); a value heavier than the target goes straight to slow and stays
// there when read.
//
// Split of work (DESIGN.md "Where the Wasm goes"): the INDEX (key bytes, slot ids, nbytes,
// state, LRU, totals, which entries to spill) lives in Wasm (assembly/store.ts via
// src/wasm/store.ts) or in its TS twin `MapIndex` below; the PAYLOADS live here in JS-owned
// Uint8Arrays indexed by slot id. Wasm memory never shrinks and wasm32 stops at 4 GiB, so
// keeping payloads out of it means a released value returns its memory to the OS (once the
// GC drops it) and a worker can hold more than 4 GiB.
//
// This module does no IO itself: spilling goes through the injected synchronous SpillHook
// (disk-spill.ts is the Node one). It never copies payload bytes: put keeps the caller's
// Uint8Arrays (callers must not mutate them afterwards) and get returns them.
import { StoreError, ConfigError, WasmError } from "../errors.ts";
import { envFlag } from "../runtime/wasm-source.ts";
import { STATE_FREE, STATE_MEMORY, STATE_SPILLED, WasmStoreIndex, type EntryState, type StoreIndex } from "../wasm/store.ts";

/** Where cold values go; synchronous, like zict's File mapping. */
export interface SpillHook {
  write(key: string, frames: readonly Uint8Array[]): void;
  read(key: string): Uint8Array[];
  remove(key: string): void;
}

export interface ByteStoreOptions {
  /** Bytes; 0 or Infinity = no limit. */
  memoryLimit?: number;
  /** Fraction of memoryLimit kept in memory before spilling, default 0.6 (dask's memory.target). */
  target?: number;
  /** Without a hook nothing is ever spilled: exceeding the limit keeps everything in memory. */
  spill?: SpillHook;
  /** Index implementation; default from DASK_WASM_BACKEND, else "wasm". */
  backend?: "wasm" | "js";
  /**
   * Called with a DASK_ERR_SPILL_FAILED StoreError when the hook throws. Without it, the
   * operation that triggered the spill throws that error AFTER completing (the put value is
   * stored; a get still returned nothing because it throws). Either way nothing is lost.
   */
  onSpillError?: (error: StoreError) => void;
  /** Makes the index (overrides `backend`); for tests and alternative indexes. */
  index?: () => StoreIndex;
}

export interface StoreStats {
  keys: number;
  /** payload bytes held in memory (may exceed the limit when there is no hook or it failed) */
  memoryBytes: number;
  spilledBytes: number;
  spilledCount: number;
  /** values written to the hook / read back into memory, since creation */
  spills: number;
  unspills: number;
  /** hook calls that threw */
  spillErrors: number;
  /** in-memory bytes above which values are spilled; 0 = never (no hook or no limit) */
  targetBytes: number;
  /** memoryBytes > memoryLimit (possible without a hook, or when the hook fails) */
  overLimit: boolean;
  /** bytes of the index itself (Wasm index blocks; 0 for the JS index) */
  indexBytes: number;
  /** times the index trapped and was rebuilt from the store's own records */
  indexRebuilds: number;
}

export interface StoreValue {
  frames: Uint8Array[];
  header: unknown;
}

// ---- the TS twin of assembly/store.ts ---------------------------------------------------------

interface MapEntry {
  slot: number;
  nbytes: number;
  state: EntryState;
}

/**
 * The index on a plain Map: same slot allocation (LIFO reuse), same LRU and the same eviction
 * rule as assembly/store.ts, so differential tests can demand identical decisions. LRU order is
 * a Set's insertion order (delete + add moves a slot to the most recent end).
 */
export class MapIndex implements StoreIndex {
  readonly backend = "js" as const;
  #entries = new Map<string, MapEntry>();
  #bySlot: (MapEntry | undefined)[] = [];
  #free: number[] = [];
  #lru = new Set<number>(); // in-memory slots, coldest first
  #target = 0;
  #memoryBytes = 0;
  #spilledBytes = 0;
  #spilledCount = 0;
  #lastState: EntryState = STATE_FREE;
  #evictions: number[] = [];

  setTarget(bytes: number): void {
    this.#target = Number.isFinite(bytes) && bytes > 0 ? Math.floor(bytes) : 0;
  }

  put(key: string, nbytes: number): number {
    let e = this.#entries.get(key);
    if (e) {
      this.#lastState = e.state;
      this.#detach(e);
    } else {
      this.#lastState = STATE_FREE;
      const slot = this.#free.length > 0 ? this.#free.pop()! : this.#bySlot.length;
      e = { slot, nbytes: 0, state: STATE_FREE };
      this.#entries.set(key, e);
      this.#bySlot[slot] = e;
    }
    e.nbytes = nbytes;
    e.state = STATE_MEMORY;
    this.#lru.add(e.slot);
    this.#memoryBytes += nbytes;
    this.#evictions = this.#computeEvictions(e.slot);
    return e.slot;
  }

  /** Takes e out of the totals (and LRU) of its current state. */
  #detach(e: MapEntry): void {
    if (e.state === STATE_MEMORY) {
      this.#lru.delete(e.slot);
      this.#memoryBytes -= e.nbytes;
    } else {
      this.#spilledBytes -= e.nbytes;
      this.#spilledCount--;
    }
  }

  /** Same rule as computeEvictions in assembly/store.ts (see there). */
  #computeEvictions(fresh: number): number[] {
    const t = this.#target;
    if (t === 0 || this.#memoryBytes <= t) return [];
    const out: number[] = [];
    let remaining = this.#memoryBytes;
    const f = this.#bySlot[fresh]!;
    if (f.nbytes > t) {
      out.push(fresh);
      remaining -= f.nbytes;
    }
    for (const s of this.#lru) {
      if (remaining <= t) break;
      if (s === fresh) continue;
      out.push(s);
      remaining -= this.#bySlot[s]!.nbytes;
    }
    return out;
  }

  get(key: string): number {
    const e = this.#entries.get(key);
    this.#evictions = [];
    if (!e) {
      this.#lastState = STATE_FREE;
      return -1;
    }
    this.#lastState = e.state;
    if (e.state === STATE_MEMORY) {
      this.#lru.delete(e.slot);
      this.#lru.add(e.slot);
    }
    return e.slot;
  }

  find(key: string): number {
    const e = this.#entries.get(key);
    this.#evictions = [];
    this.#lastState = e ? e.state : STATE_FREE;
    return e ? e.slot : -1;
  }

  delete(key: string): number {
    const e = this.#entries.get(key);
    this.#evictions = [];
    if (!e) {
      this.#lastState = STATE_FREE;
      return -1;
    }
    this.#lastState = e.state;
    this.#detach(e);
    this.#entries.delete(key);
    this.#bySlot[e.slot] = undefined;
    this.#free.push(e.slot);
    return e.slot;
  }

  #live(slot: number, state: EntryState, what: string): MapEntry {
    const e = this.#bySlot[slot];
    if (!e || e.state !== state) throw new StoreError("DASK_ERR_STORE_SLOT", `${what}: slot ${slot} is not in the expected state`);
    return e;
  }

  markSpilled(slot: number): void {
    const e = this.#live(slot, STATE_MEMORY, "markSpilled");
    this.#detach(e);
    e.state = STATE_SPILLED;
    this.#spilledBytes += e.nbytes;
    this.#spilledCount++;
  }

  unspill(slot: number): void {
    const e = this.#live(slot, STATE_SPILLED, "unspill");
    this.#detach(e);
    e.state = STATE_MEMORY;
    this.#memoryBytes += e.nbytes;
    this.#lru.add(slot);
    this.#evictions = this.#computeEvictions(slot);
  }

  nbytes(slot: number): number {
    return this.#bySlot[slot]?.nbytes ?? -1;
  }
  get lastState(): EntryState {
    return this.#lastState;
  }
  evictions(): number[] {
    return this.#evictions;
  }
  lruOrder(): number[] {
    return [...this.#lru];
  }
  get count(): number {
    return this.#entries.size;
  }
  get spilledCount(): number {
    return this.#spilledCount;
  }
  get memoryBytes(): number {
    return this.#memoryBytes;
  }
  get spilledBytes(): number {
    return this.#spilledBytes;
  }
  get indexBytes(): number {
    return 0;
  }
  clear(): void {
    this.#entries.clear();
    this.#bySlot = [];
    this.#free = [];
    this.#lru.clear();
    this.#memoryBytes = this.#spilledBytes = this.#spilledCount = 0;
    this.#evictions = [];
  }
}

// ---- the store --------------------------------------------------------------------------------

function validateOptions(o: ByteStoreOptions): { limit: number; fraction: number; backend: "wasm" | "js" } {
  const limit = o.memoryLimit ?? 0;
  if (typeof limit !== "number" || Number.isNaN(limit) || limit < 0) {
    throw new ConfigError(`options.memoryLimit must be a number of bytes >= 0 (0 or Infinity = no limit), got ${String(limit)}`);
  }
  const fraction = o.target ?? 0.6;
  if (typeof fraction !== "number" || !(fraction > 0 && fraction <= 1)) {
    throw new ConfigError(`options.target must be a fraction in (0, 1], got ${String(fraction)}`);
  }
  const backend = o.backend ?? envFlag("DASK_WASM_BACKEND") ?? "wasm";
  if (backend !== "wasm" && backend !== "js") {
    throw new ConfigError(`options.backend (or DASK_WASM_BACKEND) must be "wasm" or "js", got ${String(backend)}`);
  }
  return { limit, fraction, backend };
}

/**
 * Keys must be well-formed UTF-16: the Wasm index compares UTF-8 bytes, and a lone surrogate
 * encodes as U+FFFD, so "a\uD800" would find "a\uFFFD". Keys from the wire are msgpack UTF-8
 * and always well-formed; only API callers can pass such a key. put refuses it; lookups
 * answer "absent" (such a key can never be stored). isWellFormed is ES2024 (Node >= 20).
 */
function wellFormed(key: string): boolean {
  return (key as string & { isWellFormed(): boolean }).isWellFormed();
}

function spillError(what: string, key: string, cause: unknown): StoreError {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new StoreError("DASK_ERR_SPILL_FAILED", `the spill hook failed to ${what} ${JSON.stringify(key)}: ${msg}; the value stays where it was`, { cause });
}

/**
 * Byte store with a Wasm (default) or Map index; see the module header for the semantics.
 * `peek` reads without bumping LRU order and without unspilling (a spilled value is read from
 * the hook and left there), for diagnostics and for sending a cold value to a peer without
 * pulling it into memory.
 */
export class ByteStore {
  #index: StoreIndex;
  readonly #makeIndex: () => StoreIndex;
  readonly #spill: SpillHook | undefined;
  readonly #onSpillError: ((error: StoreError) => void) | undefined;
  readonly #limit: number;
  readonly #targetBytes: number;
  // Slot id -> key / frames (undefined while spilled) / header. Slots are reused after delete.
  #keys: (string | undefined)[] = [];
  #slots: (Uint8Array[] | undefined)[] = [];
  #headers: unknown[] = [];
  // Slot id -> nbytes, mirrored from the index so a trapped Wasm index can be rebuilt.
  #nbytes: number[] = [];
  #rebuilds = 0;
  #spills = 0;
  #unspills = 0;
  #spillErrors = 0;

  constructor(options: ByteStoreOptions = {}) {
    const { limit, fraction, backend } = validateOptions(options);
    this.#makeIndex = options.index ?? (backend === "wasm" ? () => new WasmStoreIndex() : () => new MapIndex());
    this.#index = this.#makeIndex();
    this.#spill = options.spill;
    this.#onSpillError = options.onSpillError;
    this.#limit = limit;
    // No hook or no limit: never pick anything to spill (the limit is then only reported).
    this.#targetBytes = options.spill && limit > 0 && Number.isFinite(limit) ? Math.floor(limit * fraction) : 0;
    this.#index.setTarget(this.#targetBytes);
  }

  get backend(): "wasm" | "js" {
    return this.#index.backend;
  }

  /** Stores (or replaces) key. The frames are kept, not copied. May spill colder values. */
  put(key: string, frames: readonly Uint8Array[], header?: unknown): void {
    try {
      this.#put(key, frames, header);
    } catch (err) {
      throw this.#recover(err);
    }
  }

  #put(key: string, frames: readonly Uint8Array[], header: unknown): void {
    let nbytes = 0;
    if (!wellFormed(key)) throw new StoreError("DASK_ERR_STORE_KEY", `key ${JSON.stringify(key)} is not well-formed UTF-16 (lone surrogate)`);
    for (let i = 0; i < frames.length; i++) nbytes += frames[i]!.byteLength;
    const slot = this.#index.put(key, nbytes);
    let error: StoreError | undefined;
    if (this.#index.lastState === STATE_SPILLED) {
      // The replaced value's spilled copy is stale. If removing it fails, nothing is lost (the
      // new value is in memory) but the hook keeps a file until it is next overwritten.
      try {
        this.#spill!.remove(key);
      } catch (err) {
        error = spillError("remove", key, err);
        this.#spillErrors++;
      }
    }
    this.#keys[slot] = key;
    this.#slots[slot] = frames.slice();
    this.#headers[slot] = header;
    this.#nbytes[slot] = nbytes;
    const ev = this.#index.evictions();
    if (ev.length > 0) error = this.#spillSlots(ev) ?? error;
    if (error) this.#report(error);
  }

  /** Value of key (bumps LRU; a spilled value comes back into memory unless heavier than the target). */
  get(key: string): StoreValue | undefined {
    try {
      return this.#get(key);
    } catch (err) {
      throw this.#recover(err);
    }
  }

  #get(key: string): StoreValue | undefined {
    const slot = wellFormed(key) ? this.#index.get(key) : -1;
    if (slot < 0) return undefined;
    if (this.#index.lastState === STATE_MEMORY) return { frames: this.#slots[slot]!, header: this.#headers[slot] };
    const frames = this.#readSpilled(key);
    const header = this.#headers[slot];
    // zict Buffer.slow_to_fast: a value heavier than the target stays in slow.
    if (this.#index.nbytes(slot) > this.#targetBytes) return { frames, header };
    try {
      this.#spill!.remove(key);
    } catch (err) {
      // Keep it spilled (the hook still has it): the index stays in step with the hook.
      this.#spillErrors++;
      this.#report(spillError("remove", key, err));
      return { frames, header };
    }
    // Frames first: if the index traps inside unspill, the rebuild sees the value in memory
    // (where it now is; the hook's copy is gone).
    this.#slots[slot] = frames;
    this.#index.unspill(slot);
    this.#unspills++;
    const ev = this.#index.evictions();
    if (ev.length > 0) {
      const error = this.#spillSlots(ev);
      if (error) this.#report(error);
    }
    return { frames, header };
  }

  /** Value of key without LRU bump or unspill (a spilled value is read from the hook, left there). */
  peek(key: string): StoreValue | undefined {
    let slot: number;
    try {
      slot = this.#find(key);
    } catch (err) {
      throw this.#recover(err);
    }
    if (slot < 0) return undefined;
    const frames = this.#index.lastState === STATE_MEMORY ? this.#slots[slot]! : this.#readSpilled(key);
    return { frames, header: this.#headers[slot] };
  }

  has(key: string): boolean {
    try {
      return this.#find(key) >= 0;
    } catch (err) {
      throw this.#recover(err);
    }
  }

  /** Removes key (and its spilled copy); false if it was absent. */
  delete(key: string): boolean {
    let slot: number;
    try {
      slot = wellFormed(key) ? this.#index.delete(key) : -1;
    } catch (err) {
      throw this.#recover(err);
    }
    if (slot < 0) return false;
    const wasSpilled = this.#index.lastState === STATE_SPILLED;
    this.#keys[slot] = undefined;
    this.#slots[slot] = undefined;
    this.#headers[slot] = undefined;
    if (wasSpilled) {
      try {
        this.#spill!.remove(key);
      } catch (err) {
        this.#spillErrors++;
        this.#report(spillError("remove", key, err));
      }
    }
    return true;
  }

  /** Exact payload bytes of key (sum of its frames' lengths), or undefined. */
  nbytes(key: string): number | undefined {
    try {
      const slot = this.#find(key);
      return slot < 0 ? undefined : this.#index.nbytes(slot);
    } catch (err) {
      throw this.#recover(err);
    }
  }

  /** Whether key is currently spilled (undefined if absent). */
  isSpilled(key: string): boolean | undefined {
    try {
      const slot = this.#find(key);
      return slot < 0 ? undefined : this.#index.lastState === STATE_SPILLED;
    } catch (err) {
      throw this.#recover(err);
    }
  }

  /** Keys in an unspecified order (slot order). */
  *keys(): IterableIterator<string> {
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k !== undefined) yield k;
    }
  }

  /** In-memory keys, coldest (next to spill) first. */
  lruKeys(): string[] {
    try {
      return this.#index.lruOrder().map((s) => this.#keys[s]!);
    } catch (err) {
      throw this.#recover(err);
    }
  }

  get size(): number {
    return this.#index.count;
  }

  stats(): StoreStats {
    const memoryBytes = this.#index.memoryBytes;
    return {
      keys: this.#index.count,
      memoryBytes,
      spilledBytes: this.#index.spilledBytes,
      spilledCount: this.#index.spilledCount,
      spills: this.#spills,
      unspills: this.#unspills,
      spillErrors: this.#spillErrors,
      targetBytes: this.#targetBytes,
      overLimit: this.#limit > 0 && memoryBytes > this.#limit,
      indexBytes: this.#index.indexBytes,
      indexRebuilds: this.#rebuilds,
    };
  }

  /** Size of the Wasm memory behind the index (0 for the JS index); it holds no payloads. */
  get wasmMemoryBytes(): number {
    return this.#index instanceof WasmStoreIndex ? this.#index.wasmMemoryBytes : 0;
  }

  /**
   * A trap inside the Wasm index is a bug (STYLE.md §5): its memory can no longer be trusted.
   * The store rebuilds a fresh index from what JS holds (key, nbytes, in memory or spilled per
   * slot), which is always in step because JS records change only after the index call that
   * they follow succeeded. LRU order is lost (rebuilt in slot order). The operation that
   * trapped is reported as a coded WasmError; any other error passes through unchanged.
   */
  #recover(err: unknown): unknown {
    const trapped = err instanceof WebAssembly.RuntimeError || (err instanceof WasmError && (err.code === "DASK_ERR_WASM_ABORT" || err.code === "DASK_ERR_WASM_TRAP"));
    if (!trapped) return err;
    const idx = this.#makeIndex();
    idx.setTarget(0); // re-inserting must not pick anything to spill
    const keys: (string | undefined)[] = [];
    const slots: (Uint8Array[] | undefined)[] = [];
    const headers: unknown[] = [];
    const nbytes: number[] = [];
    let n = 0;
    for (let s = 0; s < this.#keys.length; s++) {
      const key = this.#keys[s];
      if (key === undefined) continue;
      const ns = idx.put(key, this.#nbytes[s]!);
      keys[ns] = key;
      slots[ns] = this.#slots[s];
      headers[ns] = this.#headers[s];
      nbytes[ns] = this.#nbytes[s]!;
      if (slots[ns] === undefined) idx.markSpilled(ns);
      n++;
    }
    idx.setTarget(this.#targetBytes);
    this.#index = idx;
    this.#keys = keys;
    this.#slots = slots;
    this.#headers = headers;
    this.#nbytes = nbytes;
    this.#rebuilds++;
    const msg = err instanceof Error ? err.message : String(err);
    return new WasmError("DASK_ERR_WASM_TRAP", `the store index trapped (${msg}); it was rebuilt from the ${n} keys the store holds (LRU order reset); the operation may not have completed`, { cause: err });
  }

  #find(key: string): number {
    return wellFormed(key) ? this.#index.find(key) : -1;
  }

  #readSpilled(key: string): Uint8Array[] {
    try {
      return this.#spill!.read(key);
    } catch (err) {
      this.#spillErrors++;
      throw spillError("read", key, err);
    }
  }

  /**
   * Writes the candidate slots to the hook, coldest first; each one is marked spilled only
   * after its write returned. Stops at the first failure (the rest stay in memory; a full
   * disk would fail them too) and returns that error for the caller to report.
   */
  #spillSlots(slots: number[]): StoreError | undefined {
    const hook = this.#spill!;
    for (const s of slots) {
      const key = this.#keys[s]!;
      try {
        hook.write(key, this.#slots[s]!);
      } catch (err) {
        this.#spillErrors++;
        return spillError("write", key, err);
      }
      this.#index.markSpilled(s);
      this.#slots[s] = undefined;
      this.#spills++;
    }
    return undefined;
  }

  #report(error: StoreError): void {
    if (this.#onSpillError) this.#onSpillError(error);
    else throw error;
  }
}

/** The same store on the Map index (TS twin): differential tests and the benchmark baseline. */
export class MapStore extends ByteStore {
  constructor(options: Omit<ByteStoreOptions, "backend"> = {}) {
    super({ ...options, backend: "js" });
  }
}
