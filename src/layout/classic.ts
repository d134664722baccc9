// The classic block layout: the course design's 64-byte header, kept byte for byte.
//
//   header (64 bytes)                                                 data
//   +----------+------------------+----------+----------+----------+--------------------------+
//   | region   | name             | size|F   | next     | prev     | user bytes ...           |
//   | u64 @0   | 32 bytes @8      | u64 @40  | u64 @48  | u64 @56  | @64                      |
//   +----------+------------------+----------+----------+----------+--------------------------+
//                                                                    free blocks only:
//                                                                    next free u64 @64,
//                                                                    prev free u64 @72
//
// - `region` is the address of the region (mapping) that holds the block.
// - `size` is the whole block, header included, a multiple of 16; bit 0 set means free.
// - `next`/`prev` link every block of the heap in one list: regions in the order they were
//   mapped, blocks in address order within a region. 0 is NULL.
// - The name is UTF-8, NUL-terminated, so at most 31 bytes of it are kept.
// - A free block keeps its free-list links in its first 16 data bytes, which is why the smallest
//   block is 80 bytes.
//
// Every u64 is stored little-endian as two u32 halves; addresses are below 2^47, so they round-trip
// exactly through a Number.

export const HEADER_SIZE = 64;
export const OFF_REGION = 0;
export const OFF_NAME = 8;
export const NAME_BYTES = 32;
export const OFF_SIZE = 40;
export const OFF_NEXT = 48;
export const OFF_PREV = 56;
export const OFF_NEXT_FREE = 64;
export const OFF_PREV_FREE = 72;

export const ALIGNMENT = 16;
export const FREE_BIT = 1;
export const MIN_BLOCK = 80;

/** The block size for a request of `bytes`: header plus data, rounded up to 16, never below 80. */
export function classicBlockSize(bytes: number): number {
  const size = Math.ceil((bytes + HEADER_SIZE) / ALIGNMENT) * ALIGNMENT;
  return size < MIN_BLOCK ? MIN_BLOCK : size;
}
