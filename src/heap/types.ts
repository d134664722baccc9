// The plain-data shapes of introspection: what stats() and snapshot() return. Printing, leak
// reports and pictures are built from a snapshot, so they are written once for every preset.

/**
 * An address of native memory, as the heap's calls accept it: a Number (what the heap returns), or
 * a BigInt (what koffi 3 returns for `void *`), converted exactly; either must be a non-negative
 * safe integer.
 */
export type Address = number | bigint;

/** One block as introspection sees it. */
export interface BlockInfo {
  /** Address of the block's header (what print_memory shows). */
  readonly address: number;
  /** The whole block, header included. */
  readonly size: number;
  readonly free: boolean;
  readonly name: string;
}

/** One region (a mapping from the kernel) and its blocks in address order. */
export interface RegionInfo {
  readonly address: number;
  readonly size: number;
  readonly blocks: readonly BlockInfo[];
}

/** Every region and block of a heap, and its free list, as plain data: `heap.snapshot()`. */
export interface HeapSnapshot {
  /** In the order they were mapped. */
  readonly regions: readonly RegionInfo[];
  /** Header addresses of the free blocks, in free-list order. */
  readonly freeList: readonly number[];
}

/**
 * What `heap.handle()` gives for a shared heap and `Heap.attach(handle)` takes: plain data and a
 * SharedArrayBuffer (the heap's control block), so it survives postMessage to a worker.
 */
export interface SharedHeapHandle {
  readonly kind: 'ffi-heap/shared';
  readonly version: 1;
  readonly control: SharedArrayBuffer;
  readonly options: { readonly scribble: boolean; readonly limit: number; readonly throwOnOutOfMemory: boolean };
}

/** `sharedHeap.threads()`: the heaps open over a shared arena, and what was taken back from threads that ended. */
export interface SharedThreadStats {
  /** Heaps open over the arena now, in threads still running (at most 1024 at once). */
  open: number;
  /** Heaps whose threads ended without close(), reclaimed by the others: their slots and cached blocks. */
  reclaimed: number;
  /** Times a thread took the lock over from one that died holding it, and rebuilt the arena's lists. */
  repairs: number;
}

/** Counters kept as the heap runs; `stats()` returns a fresh copy. */
export interface HeapStats {
  /** Bytes currently mapped from the kernel. */
  mapped: number;
  peakMapped: number;
  /** Bytes in blocks that are in use, headers included. */
  inUse: number;
  peakInUse: number;
  /** Bytes in free blocks, headers included. */
  freeBytes: number;
  /** Every block, used or free. */
  blocks: number;
  usedBlocks: number;
  freeBlocks: number;
  regions: number;
  mmapCalls: number;
  munmapCalls: number;
}
