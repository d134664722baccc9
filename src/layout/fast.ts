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

export const HEADER_SIZE = 8;
/** Word (u32) indexes inside a block, from the header's first word. */
export const W_PREV_SIZE = 0;
export const W_SIZE = 1;
export const W_NEXT_FREE = 2;
export const W_PREV_FREE = 3;

export const ALIGNMENT = 16;
export const MIN_BLOCK = 16;

/** Flags in the low bits of the size word. */
export const FREE = 1;
/** The block has a name, kept in a side table; unnamed blocks never touch it. */
export const NAMED = 2;
/**
 * The block is free but parked in a small-block cache instead of the free lists: not merged with
 * its neighbours (they see it as used) until the caches are flushed. Its next-free link is the
 * cache's.
 */
export const CACHED = 4;
export const FLAG_MASK = ALIGNMENT - 1;
export const SIZE_MASK = ~FLAG_MASK;

/**
 * Block size for a request of `bytes` (below 2^31): header plus data, rounded up to 16. Requests
 * of 0 to 8 bytes come out at MIN_BLOCK (16) by the rounding alone.
 */
export function fastBlockSize(bytes: number): number {
  return (bytes + HEADER_SIZE + ALIGNMENT - 1) & SIZE_MASK;
}
