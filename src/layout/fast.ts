// The fast block layout: an 8-byte header, data on a 16-byte boundary.
//
//        header (8 bytes)            data (16-byte aligned)
//   +------------+---------------+--------------------------------------------+
//   | prev size  | size | flags  | user bytes ...                             |
//   | u32 @0     | u32 @4        | @8                                         |
//   +------------+---------------+--------------------------------------------+
//                                  free blocks only: next free u32 @8,
//                                  prev free u32 @12
//
// - Offsets, not addresses: every block lives in one reserved arena, so a block is named by its
//   header's offset from the arena's start (below 4 GiB, one u32), and the address of its data is
//   `arena + offset + 8`. 0 is NULL: no block starts at offset 0.
// - `size` is the whole block, header included, a multiple of 16 (at least 16); its low 4 bits
//   hold the flags. `prev size` is the size of the block physically before (0 for the first
//   block), kept up to date for used and free blocks alike, so either neighbour is one read away.
// - Headers sit at offsets that are 8 modulo 16, so data is 16-byte aligned.
// - The heap's committed range ends in an 8-byte sentinel header of size 0, always "used": the
//   last block's right neighbour exists and never merges.
// - A free block is either FREE (on a segregated list, merged with its neighbours) or CACHED
//   (parked whole in a per-size LIFO cache for fast reuse); never both.

// The constants are const enums, so tsc writes their values into the code that uses them: V8 reads
// an imported `const` through a module cell, with a check for the temporal dead zone, on every use
// (some six instructions each in the optimized malloc and free, measured on Node 20).

/** Sizes, in bytes. */
export const enum Block {
  HEADER = 8,
  ALIGNMENT = 16,
  /** The smallest block: a header and 8 data bytes, room for a free block's two u32 links. */
  MIN = 16,
}

/** Word (u32) indexes inside a block, from the header's first word. */
export const enum Word {
  PREV_SIZE = 0,
  SIZE = 1,
  NEXT_FREE = 2,
  PREV_FREE = 3,
}

/** Flags in the low bits of the size word, and the masks that split it. */
export const enum Flag {
  FREE = 1,
  /** The block has a name, kept in a side table; unnamed blocks never touch it. */
  NAMED = 2,
  /**
   * The block is free but parked in a small-block cache instead of the free lists: not merged with
   * its neighbours (they see it as used) until the caches are flushed. Its next-free link is the
   * cache's.
   */
  CACHED = 4,
  /** The block is tracked by autoFree: its free must tell the owner registry. */
  OWNED = 8,
  MASK = 15,
  SIZE_MASK = ~15,
}

/**
 * Block size for a request of `bytes` (below 2^31): header plus data, rounded up to 16. Requests
 * of 0 to 8 bytes come out at Block.MIN (16) by the rounding alone.
 */
export function fastBlockSize(bytes: number): number {
  return (bytes + Block.HEADER + Block.ALIGNMENT - 1) & Flag.SIZE_MASK;
}
