// The contract between the public Heap and the engines behind its presets. The Heap checks the
// kinds of its arguments; an engine validates addresses (it alone knows its layout) and does the
// work. Introspection goes through a snapshot so that printing, leak reports and pictures are
// written once for every engine.

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

export interface HeapSnapshot {
  /** In the order they were mapped. */
  readonly regions: readonly RegionInfo[];
  /** Header addresses of the free blocks, in free-list order. */
  readonly freeList: readonly number[];
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

export interface Engine {
  /** `size` is a safe non-negative integer. Returns 0 when no memory can be had. */
  malloc(size: number, name: string | undefined): number;
  /** Like malloc, and the first `size` bytes read as zero. */
  calloc(size: number, name: string | undefined): number;
  /** `ptr` is a non-zero Number; throws HeapError when it is not a live block. */
  free(ptr: number): void;
  /** `ptr` is a non-zero Number; `size` as for malloc, 0 frees. */
  realloc(ptr: number, size: number, name: string | undefined): number;
  usableSize(ptr: number): number;
  bytes(ptr: number, length: number | undefined): Uint8Array;
  snapshot(): HeapSnapshot;
  stats(): HeapStats;
  check(): void;
  /** Gives free memory back to the kernel now, beyond what the engine keeps for reuse. */
  trim(): void;
  destroy(): void;
}
