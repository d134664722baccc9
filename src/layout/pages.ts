// The small-object layout: pages of one size class each, and no header on any block.
//
//   small arena (reserved once; committed in the kernel's 4 KiB pages, each a unit of four of ours)
//   +--------+--------+--------+--------+---------------+--------+--------+-----
//   | unit 0: never committed           | page 4        | page 5 | page 6 | ...
//   |                                   | class 4 (64 B)| 16 B   | 64 B   |
//   |                                   | [s0][s1]...   | [s0].. | [s0].. |
//   +--------+--------+--------+--------+---------------+--------+--------+-----
//
// - A page is Page.BYTES (1 KiB) of the small arena, cut into slots of its class's size from its
//   first byte: slot i of page p is at `arena + p * Page.BYTES + i * size`. Slots are the blocks;
//   they carry no header, so the address alone says page, class and slot.
// - Everything else about a page lives in JavaScript (src/heap/pages.ts): its class, a bitmap of
//   its free slots, counts and list links. Native memory holds only the program's bytes, so a write
//   after free or an overflow between slots can change no metadata of the heap.
// - The arena's first unit is never committed, so page number 0 means "none" and offset 0 is never
//   an address.
// - Sixteen classes, from 16 to 256 bytes in steps of 16: a request wastes at most 15 bytes, and a
//   page at most 1024 mod its slot size (192 bytes at worst, for 208). A page of 1 KiB keeps what a
//   class touched once small: a heap of many sizes and few blocks pays at most 16 KiB for them.

/** Sizes and shifts of the small-object layout. */
export const enum Page {
  SHIFT = 10,
  BYTES = 1024,
  /** The most slots a page holds (the 16-byte class), and the bitmap words that cover them. */
  MAX_SLOTS = 64,
  WORDS = 2,
  /** log2(WORDS): a page's first bitmap word is page << WORD_SHIFT. */
  WORD_SHIFT = 1,
  /** The largest request served from pages. */
  SMALL_MAX = 256,
  /** Size classes, numbered from 1 (0 marks a page no class owns). */
  CLASSES = 16,
  /** The class byte of a spare page: its memory was given back to the kernel (it is mapped still). */
  GIVEN_BACK = 255,
  /** See CLASS_RECIPROCAL. */
  RECIPROCAL_SHIFT = 19,
  /**
   * A page's facts packed in one Int32 (SmallPages.pageInfo), read and written whole on the hot
   * paths: its class in the low byte, its cursor (the first bitmap word that may hold a free slot)
   * in bits 8 to 10, and how many of its slots are free from bit 16.
   */
  INFO_CLASS = 0xff,
  INFO_CURSOR_SHIFT = 8,
  INFO_FREE_SHIFT = 16,
}

// The per-class tables have an entry for every value a page's class byte can hold, 0 past the last
// class, so that a lookup by any page's class is in bounds and a page no class owns has no slots.
/** The slot size of each class, by class number (0 for none). */
export const CLASS_SIZE: Uint16Array = new Uint16Array(256);
/** Slots in a page of each class (0 for none). */
export const CLASS_SLOTS: Uint16Array = new Uint16Array(256);
/**
 * Division by a class's size without dividing: for an offset n inside a page that is a multiple of
 * the size, (n * CLASS_RECIPROCAL[c]) >>> Page.RECIPROCAL_SHIFT is exactly n / size (the reciprocal is
 * rounded up, and n * its error stays below 1). For other offsets the quotient may be off, which
 * the caller's check (slot * size === n) refuses either way. n * reciprocal stays below 2^31.
 */
export const CLASS_RECIPROCAL: Uint32Array = new Uint32Array(256);
/** The class of a request of n bytes (n <= SMALL_MAX), indexed by (n + 15) >>> 4. */
export const CLASS_OF: Uint8Array = new Uint8Array((Page.SMALL_MAX >>> 4) + 1);

{
  let c = 1;
  for (let size = 16; size <= 256; size += 16) CLASS_SIZE[c++] = size;
  if (c !== Page.CLASSES + 1) throw new Error(`the small-object layout has ${c - 1} classes, expected ${Page.CLASSES}`);
  for (let k = 1; k <= Page.CLASSES; k++) {
    CLASS_SLOTS[k] = Math.floor(Page.BYTES / CLASS_SIZE[k]!);
    CLASS_RECIPROCAL[k] = Math.ceil(2 ** Page.RECIPROCAL_SHIFT / CLASS_SIZE[k]!);
  }
  for (let i = 0, k = 1; i < CLASS_OF.length; i++) {
    while (CLASS_SIZE[k]! < Math.max(16, i * 16)) k++;
    CLASS_OF[i] = k;
  }
}
