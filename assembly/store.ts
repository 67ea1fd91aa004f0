// The worker byte store's INDEX (src/store/byte-store.ts owns the payloads). Role: map a key's
// UTF-8 bytes to a slot id, keep each entry's exact nbytes and state (in memory / spilled), the
// LRU order of the in-memory entries, running totals, and decide which entries must be spilled
// so that the in-memory total comes back under `target` (zict LRU + Buffer semantics, as used
// by distributed/spill.py SpillBuffer). It must NOT hold payload bytes: values live in
// JS-owned Uint8Arrays so that releasing them gives memory back to the OS (Wasm memory never
// shrinks) and so that a worker can hold more than the 4 GiB a wasm32 memory can address.
// It does no IO and never calls out: JS performs every spill and reports success with
// storeMarkSpilled, so a failing spill hook cannot leave the index out of step.
//
// Memory layout (all little-endian, all allocated with the stub runtime's bump heap.alloc;
// when a block grows, a block twice the size is allocated and the old one is abandoned, so the
// total ever allocated stays below twice the peak of each block):
//
//   entries  slotCap × 32 bytes, indexed by slot id (the id JS uses in its `slots` array)
//     +0  u32 hash        hash of the key bytes (also the table probe start)
//     +4  u32 keyOff      pointer to the key bytes inside the key arena
//     +8  u32 keyLen      key length in bytes
//     +12 u32 prev        LRU neighbour towards the MRU end (NIL at the head)
//     +16 u32 next        LRU neighbour towards the LRU end (NIL at the tail); free-list link
//     +20 u32 state       STATE_FREE / STATE_MEMORY / STATE_SPILLED
//     +24 u64 nbytes      exact payload bytes (sum of frame lengths); u64 because totals pass 4 GiB
//   table    tableCap × u32, open addressing with linear probing; 0 = empty, else slot id + 1.
//            Load factor <= 1/2; deletion shifts later entries back (no tombstones), so a
//            put/delete churn never degrades probes.
//   arena    key records [u32 slot][u32 len][len bytes, padded to 4]; a deleted key's record
//            gets slot = NIL and its bytes count as dead. When the arena is full, live records
//            are slid down in place (compaction) before any growth, so a churn of keys reuses
//            the same bytes.
//   result   4 × u32 read by JS after each call without another crossing:
//            [0] previous state of the touched entry (STATE_FREE if it was new / missing),
//            [1] number of spill candidates written to `out`, [2] out pointer, [3] unused.
//   out      spill candidates (u32 slot ids, coldest first), or the LRU order for storeLruOrder.
//
// Slot ids are reused LIFO through a free list (threaded through `next`), so the entries
// block never grows beyond the peak number of live keys.
import { ERR_BAD_ARGUMENT, ERR_STORE_INDEX_FULL, ERR_STORE_MISSING, REGION_STORE_KEY, STATUS_OK } from "./status";
import { region } from "./memory";

// Entry states, mirrored in src/wasm/store.ts.
const STATE_FREE: u32 = 0;
const STATE_MEMORY: u32 = 1;
const STATE_SPILLED: u32 = 2;

const NIL: u32 = 0xffffffff;
const ENTRY_SIZE: usize = 32;
// wasm32 cannot address more than 2^32 bytes; 2^26 live keys (2 GiB of entries) is the cap.
const MAX_SLOTS: u32 = 1 << 26;

let entries: usize = 0;
let slotCap: u32 = 0;
let slotHigh: u32 = 0; // slots [0, slotHigh) have been handed out at least once
let freeHead: u32 = NIL;

let table: usize = 0;
let tableCap: u32 = 0; // power of two
let tableMask: u32 = 0;

let arena: usize = 0;
let arenaCap: usize = 0;
let arenaUsed: usize = 0;
let arenaDead: usize = 0;

let lruHead: u32 = NIL; // most recently used
let lruTail: u32 = NIL; // least recently used: first to spill

let liveCount: u32 = 0;
let spilledCount: u32 = 0;
let memoryBytes: u64 = 0;
let spilledBytes: u64 = 0;
let target: u64 = 0; // 0 = never evict

let result: usize = 0;
let out: usize = 0;
let outCap: u32 = 0; // in u32 items

// ---- small helpers -------------------------------------------------------------------------

@inline function ent(slot: u32): usize {
  return entries + (<usize>slot) * ENTRY_SIZE;
}
@inline function eHash(s: u32): u32 { return load<u32>(ent(s), 0); }
@inline function eKeyOff(s: u32): usize { return <usize>load<u32>(ent(s), 4); }
@inline function eKeyLen(s: u32): u32 { return load<u32>(ent(s), 8); }
@inline function ePrev(s: u32): u32 { return load<u32>(ent(s), 12); }
@inline function eNext(s: u32): u32 { return load<u32>(ent(s), 16); }
@inline function eState(s: u32): u32 { return load<u32>(ent(s), 20); }
@inline function eNbytes(s: u32): u64 { return load<u64>(ent(s), 24); }
@inline function setPrev(s: u32, v: u32): void { store<u32>(ent(s), v, 12); }
@inline function setNext(s: u32, v: u32): void { store<u32>(ent(s), v, 16); }
@inline function setState(s: u32, v: u32): void { store<u32>(ent(s), v, 20); }

/** Arena record size: 8-byte header + key bytes, padded to 4. */
@inline function recordLen(len: usize): usize {
  return (len + <usize>11) & ~(<usize>3);
}

@inline function setResult(prevState: u32, count: u32): void {
  store<u32>(result, prevState, 0);
  store<u32>(result, count, 4);
  store<u32>(result, <u32>out, 8);
}

function ensureInit(): void {
  if (result != 0) return;
  result = heap.alloc(16);
  memory.fill(result, 0, 16);
  slotCap = 64;
  entries = heap.alloc(<usize>slotCap * ENTRY_SIZE);
  tableCap = 128;
  tableMask = tableCap - 1;
  table = heap.alloc(<usize>tableCap << 2);
  memory.fill(table, 0, <usize>tableCap << 2);
  arenaCap = 4096;
  arena = heap.alloc(arenaCap);
  outCap = 64;
  out = heap.alloc(<usize>outCap << 2);
}

/**
 * Hash of len bytes at ptr: a word-at-a-time FNV-1a variant finished with murmur3's fmix32.
 * Not cryptographic; keys come from the scheduler, and the table stays at load <= 1/2.
 */
function hashBytes(ptr: usize, len: usize): u32 {
  let h: u32 = 0x811c9dc5 ^ <u32>len;
  let i: usize = 0;
  while (i + 4 <= len) {
    h = (h ^ load<u32>(ptr + i)) * 0x01000193;
    h = rotl<u32>(h, 13);
    i += 4;
  }
  while (i < len) {
    h = (h ^ <u32>load<u8>(ptr + i)) * 0x01000193;
    i++;
  }
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

/** Table position holding the key, or the empty position where it would go (bit 31 set). */
function probe(keyPtr: usize, keyLen: u32, h: u32): u32 {
  let i = h & tableMask;
  while (true) {
    let v = load<u32>(table + (<usize>i << 2));
    if (v == 0) return i | 0x80000000;
    let s = v - 1;
    if (eHash(s) == h && eKeyLen(s) == keyLen && memory.compare(eKeyOff(s), keyPtr, keyLen) == 0) return i;
    i = (i + 1) & tableMask;
  }
  return 0; // unreachable
}

function growTable(): bool {
  let newCap = tableCap << 1;
  if (newCap == 0 || newCap > (MAX_SLOTS << 1)) return false;
  let t = heap.alloc(<usize>newCap << 2);
  memory.fill(t, 0, <usize>newCap << 2);
  let mask = newCap - 1;
  for (let i: u32 = 0; i < tableCap; i++) {
    let v = load<u32>(table + (<usize>i << 2));
    if (v == 0) continue;
    let j = eHash(v - 1) & mask;
    while (load<u32>(t + (<usize>j << 2)) != 0) j = (j + 1) & mask;
    store<u32>(t + (<usize>j << 2), v);
  }
  table = t;
  tableCap = newCap;
  tableMask = mask;
  return true;
}

/** Removes table position i with backward-shift deletion (keeps linear probing tombstone-free). */
function tableRemove(pos: u32): void {
  let i = pos;
  let j = pos;
  while (true) {
    j = (j + 1) & tableMask;
    let v = load<u32>(table + (<usize>j << 2));
    if (v == 0) break;
    let home = eHash(v - 1) & tableMask;
    // Move v back into hole i unless its home lies cyclically in (i, j].
    let inRange = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!inRange) {
      store<u32>(table + (<usize>i << 2), v);
      i = j;
    }
  }
  store<u32>(table + (<usize>i << 2), 0);
}

/** Slides live key records down over dead ones; fixes each moved entry's keyOff. */
function compactArena(): void {
  let src: usize = 0;
  let dst: usize = 0;
  while (src < arenaUsed) {
    let slot = load<u32>(arena + src, 0);
    let len = <usize>load<u32>(arena + src, 4);
    let recLen = recordLen(len);
    if (slot != NIL) {
      if (dst != src) memory.copy(arena + dst, arena + src, recLen);
      store<u32>(ent(slot), <u32>(arena + dst + 8), 4);
      dst += recLen;
    }
    src += recLen;
  }
  arenaUsed = dst;
  arenaDead = 0;
}

/** Room for a record of recLen bytes in the arena; compacts first, grows only if still short. */
function arenaReserve(recLen: usize): bool {
  if (arenaUsed + recLen <= arenaCap) return true;
  if (arenaDead > 0) compactArena();
  if (arenaUsed + recLen <= arenaCap) return true;
  let want = arenaCap << 1;
  while (want < arenaUsed + recLen) want <<= 1;
  if (want >= (<usize>1 << 31)) return false;
  let a = heap.alloc(want);
  memory.copy(a, arena, arenaUsed);
  // Entries point into the arena; rebase them (only live records exist after compaction).
  let delta = a - arena;
  let off: usize = 0;
  while (off < arenaUsed) {
    let slot = load<u32>(a + off, 0);
    let len = <usize>load<u32>(a + off, 4);
    if (slot != NIL) store<u32>(ent(slot), <u32>(eKeyOff(slot) + delta), 4);
    off += recordLen(len);
  }
  arena = a;
  arenaCap = want;
  return true;
}

function arenaRelease(slot: u32): void {
  let rec = eKeyOff(slot) - 8;
  store<u32>(rec, NIL, 0);
  arenaDead += recordLen(<usize>eKeyLen(slot));
}

function allocSlot(): u32 {
  if (freeHead != NIL) {
    let s = freeHead;
    freeHead = eNext(s);
    return s;
  }
  if (slotHigh == slotCap) {
    if (slotCap >= MAX_SLOTS) return NIL;
    let cap = slotCap << 1;
    let e = heap.alloc(<usize>cap * ENTRY_SIZE);
    memory.copy(e, entries, <usize>slotCap * ENTRY_SIZE);
    entries = e;
    slotCap = cap;
  }
  return slotHigh++;
}

@inline function lruUnlink(s: u32): void {
  let p = ePrev(s);
  let n = eNext(s);
  if (p != NIL) setNext(p, n); else lruHead = n;
  if (n != NIL) setPrev(n, p); else lruTail = p;
}

@inline function lruPushHead(s: u32): void {
  setPrev(s, NIL);
  setNext(s, lruHead);
  if (lruHead != NIL) setPrev(lruHead, s); else lruTail = s;
  lruHead = s;
}

function outReserve(n: u32): void {
  if (n <= outCap) return;
  let cap = outCap;
  while (cap < n) cap <<= 1;
  out = heap.alloc(<usize>cap << 2);
  outCap = cap;
}

/**
 * Writes the entries to spill, coldest first, into `out` and returns how many. `fresh` (or NIL)
 * is an entry just put: if it alone exceeds the target it goes first (zict Buffer sends a value
 * heavier than `n` straight to slow), and it is never picked from the LRU walk.
 */
function computeEvictions(fresh: u32): u32 {
  if (target == 0 || memoryBytes <= target) return 0;
  outReserve(liveCount - spilledCount);
  let count: u32 = 0;
  let remaining = memoryBytes;
  if (fresh != NIL && eNbytes(fresh) > target) {
    store<u32>(out, fresh);
    count = 1;
    remaining -= eNbytes(fresh);
  }
  let s = lruTail;
  while (remaining > target && s != NIL) {
    if (s != fresh) {
      store<u32>(out + (<usize>count << 2), s);
      count++;
      remaining -= eNbytes(s);
    }
    s = ePrev(s);
  }
  return count;
}

function freeEntry(pos: u32, s: u32): void {
  tableRemove(pos);
  let st = eState(s);
  if (st == STATE_MEMORY) {
    lruUnlink(s);
    memoryBytes -= eNbytes(s);
  } else {
    spilledBytes -= eNbytes(s);
    spilledCount--;
  }
  arenaRelease(s);
  setState(s, STATE_FREE);
  setNext(s, freeHead);
  freeHead = s;
  liveCount--;
}

// ---- exports -------------------------------------------------------------------------------

/** Index format version (JS checks it matches src/wasm/store.ts). */
export function storeVersion(): i32 {
  return 1;
}

/** Pointer to the 16-byte result block (stable for the instance's life). */
export function storeResultPtr(): usize {
  ensureInit();
  return result;
}

/** Byte limit for in-memory entries; 0 disables eviction (no spill hook, or no limit). */
export function storeSetTarget(bytes: f64): void {
  ensureInit();
  target = bytes <= 0 ? 0 : <u64>bytes;
}

/**
 * Inserts or replaces the key in REGION_STORE_KEY[0, keyLen) with `nbytes` payload bytes, as the
 * most recently used in-memory entry. Returns its slot id (a replaced key keeps its slot), or a
 * negative status. result[0] = previous state (FREE if new; SPILLED tells JS to drop the spilled
 * copy); result[1] = spill candidates written to out (see computeEvictions).
 */
export function storePut(keyLen: u32, nbytes: f64): i32 {
  ensureInit();
  let keyPtr = region(REGION_STORE_KEY, keyLen);
  if (keyPtr == 0 || nbytes < 0) return ERR_BAD_ARGUMENT;
  let n = <u64>nbytes;
  let h = hashBytes(keyPtr, keyLen);
  let pos = probe(keyPtr, keyLen, h);
  let s: u32;
  let prev: u32 = STATE_FREE;
  if ((pos & 0x80000000) == 0) {
    s = load<u32>(table + (<usize>pos << 2)) - 1;
    prev = eState(s);
    if (prev == STATE_MEMORY) {
      lruUnlink(s);
      memoryBytes -= eNbytes(s);
    } else {
      spilledBytes -= eNbytes(s);
      spilledCount--;
    }
  } else {
    // Reserve everything before touching state, so a refusal leaves the index unchanged.
    if ((liveCount + 1) << 1 > tableCap) {
      if (!growTable()) return ERR_STORE_INDEX_FULL;
      pos = probe(keyPtr, keyLen, h);
    }
    let recLen = recordLen(<usize>keyLen);
    if (!arenaReserve(recLen)) return ERR_STORE_INDEX_FULL;
    s = allocSlot();
    if (s == NIL) return ERR_STORE_INDEX_FULL;
    let rec = arena + arenaUsed;
    store<u32>(rec, s, 0);
    store<u32>(rec, keyLen, 4);
    // The region may have been the source; the arena never overlaps it.
    memory.copy(rec + 8, keyPtr, keyLen);
    arenaUsed += recLen;
    let e = ent(s);
    store<u32>(e, h, 0);
    store<u32>(e, <u32>(rec + 8), 4);
    store<u32>(e, keyLen, 8);
    store<u32>(table + (<usize>(pos & 0x7fffffff) << 2), s + 1);
    liveCount++;
  }
  store<u64>(ent(s), n, 24);
  setState(s, STATE_MEMORY);
  lruPushHead(s);
  memoryBytes += n;
  setResult(prev, computeEvictions(s));
  return <i32>s;
}

/** Slot of the key without touching LRU order, or ERR_STORE_MISSING. result[0] = its state. */
export function storeFind(keyLen: u32): i32 {
  ensureInit();
  let keyPtr = region(REGION_STORE_KEY, keyLen);
  if (keyPtr == 0) return ERR_BAD_ARGUMENT;
  let pos = probe(keyPtr, keyLen, hashBytes(keyPtr, keyLen));
  if ((pos & 0x80000000) != 0) {
    setResult(STATE_FREE, 0);
    return ERR_STORE_MISSING;
  }
  let s = load<u32>(table + (<usize>pos << 2)) - 1;
  setResult(eState(s), 0);
  return <i32>s;
}

/**
 * Slot of the key, or ERR_STORE_MISSING; an in-memory entry becomes the most recently used.
 * result[0] = state; a SPILLED entry is left as is (JS reads it back, then calls storeUnspill).
 */
export function storeGet(keyLen: u32): i32 {
  let s = storeFind(keyLen);
  if (s >= 0 && eState(<u32>s) == STATE_MEMORY && <u32>s != lruHead) {
    lruUnlink(<u32>s);
    lruPushHead(<u32>s);
  }
  return s;
}

/** Removes the key; returns its former slot or ERR_STORE_MISSING. result[0] = former state. */
export function storeDelete(keyLen: u32): i32 {
  ensureInit();
  let keyPtr = region(REGION_STORE_KEY, keyLen);
  if (keyPtr == 0) return ERR_BAD_ARGUMENT;
  let pos = probe(keyPtr, keyLen, hashBytes(keyPtr, keyLen));
  if ((pos & 0x80000000) != 0) {
    setResult(STATE_FREE, 0);
    return ERR_STORE_MISSING;
  }
  let s = load<u32>(table + (<usize>pos << 2)) - 1;
  setResult(eState(s), 0);
  freeEntry(pos, s);
  return <i32>s;
}

/** JS wrote the slot's value to the spill hook: move it out of memory and the LRU list. */
export function storeMarkSpilled(slot: u32): i32 {
  if (slot >= slotHigh || eState(slot) != STATE_MEMORY) return ERR_BAD_ARGUMENT;
  lruUnlink(slot);
  setState(slot, STATE_SPILLED);
  memoryBytes -= eNbytes(slot);
  spilledBytes += eNbytes(slot);
  spilledCount++;
  return STATUS_OK;
}

/**
 * JS read a spilled value back: it becomes the most recently used in-memory entry, and
 * result[1] spill candidates are written to out (others may have to make room for it).
 * Callers keep values heavier than the target spilled (zict Buffer.slow_to_fast).
 */
export function storeUnspill(slot: u32): i32 {
  if (slot >= slotHigh || eState(slot) != STATE_SPILLED) return ERR_BAD_ARGUMENT;
  setState(slot, STATE_MEMORY);
  spilledBytes -= eNbytes(slot);
  spilledCount--;
  memoryBytes += eNbytes(slot);
  lruPushHead(slot);
  setResult(STATE_SPILLED, computeEvictions(slot));
  return STATUS_OK;
}

/** Exact payload bytes of a live slot (f64 is exact up to 2^53), or -1. */
export function storeNbytes(slot: u32): f64 {
  if (slot >= slotHigh || eState(slot) == STATE_FREE) return -1;
  return <f64>eNbytes(slot);
}

/** Writes the in-memory slots coldest first into out; returns the count (pointer in result[2]). */
export function storeLruOrder(): i32 {
  ensureInit();
  outReserve(liveCount - spilledCount);
  let count: u32 = 0;
  let s = lruTail;
  while (s != NIL) {
    store<u32>(out + (<usize>count << 2), s);
    count++;
    s = ePrev(s);
  }
  setResult(STATE_FREE, count);
  return <i32>count;
}

export function storeCount(): i32 { return <i32>liveCount; }
export function storeSpilledCount(): i32 { return <i32>spilledCount; }
export function storeMemoryBytes(): f64 { return <f64>memoryBytes; }
export function storeSpilledBytes(): f64 { return <f64>spilledBytes; }
/** Bytes the index blocks occupy now (entries + table + arena), for stats. */
export function storeIndexBytes(): f64 {
  return <f64>(<usize>slotCap * ENTRY_SIZE + (<usize>tableCap << 2) + arenaCap + (<usize>outCap << 2));
}

/** Forgets every key (slots, arena and table are kept and reused). */
export function storeClear(): void {
  ensureInit();
  memory.fill(table, 0, <usize>tableCap << 2);
  slotHigh = 0;
  freeHead = NIL;
  arenaUsed = 0;
  arenaDead = 0;
  lruHead = NIL;
  lruTail = NIL;
  liveCount = 0;
  spilledCount = 0;
  memoryBytes = 0;
  spilledBytes = 0;
}
