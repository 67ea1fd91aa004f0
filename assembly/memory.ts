// Module-owned scratch regions: the only way bytes cross the JS/Wasm boundary (STYLE.md §3).
// JS asks for a region of at least `len` bytes, writes its input there through a view over
// `memory.buffer`, and calls a kernel with (ptr, len). A region keeps its capacity between
// calls; growing it may call memory.grow, which detaches every JS view (callers re-create
// views when `memory.buffer` changes identity). Contents are NOT preserved across growth.
//
// Runtime is `stub` (asconfig.json): heap.alloc is a bump allocator that never frees, so a
// region grows by doubling (rounded to 4 KiB) and the total ever allocated stays below twice
// the largest request per region. Wasm memory never shrinks; that is why large payloads
// (store values) live outside it, in JS-owned buffers.
import { REGION_COUNT } from "./status";

const regionPtr = new StaticArray<usize>(REGION_COUNT);
const regionCap = new StaticArray<usize>(REGION_COUNT);

/**
 * Pointer to region `id` with capacity >= len bytes, or 0 if `id` is invalid or len >= 2 GiB.
 * If memory.grow fails the stub allocator traps; the JS side maps that trap to
 * ERR_OUT_OF_MEMORY and rebuilds the instance (src/wasm/core.ts).
 */
export function region(id: i32, len: usize): usize {
  if (id < 0 || id >= REGION_COUNT) return 0;
  let cap = unchecked(regionCap[id]);
  if (cap >= len && cap != 0) return unchecked(regionPtr[id]);
  let want: usize = cap == 0 ? 4096 : cap;
  while (want < len) {
    if (want >= (<usize>1 << 31)) return 0; // wasm32: refuse a single region >= 2 GiB
    want <<= 1;
  }
  want = (want + 4095) & ~(<usize>4095);
  let ptr = heap.alloc(want);
  unchecked((regionPtr[id] = ptr));
  unchecked((regionCap[id] = want));
  return ptr;
}

/** Current capacity of region `id` in bytes (0 before first use). */
export function regionCapacity(id: i32): usize {
  if (id < 0 || id >= REGION_COUNT) return 0;
  return unchecked(regionCap[id]);
}
