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
// - Everything else about a page lives in JavaScript (src/heap/pages.ts): its class, a mark for
//   each 16-byte granule (in use, cached, free and the next free slot, or not a slot's start),
//   counts and list links, and each class's cache of freed slots. Native memory holds only the
//   program's bytes, so a write after free or an overflow between slots can change no metadata of
//   the heap.
// - The arena's first unit is never committed, so page number 0 means "none" and offset 0 is never
//   an address.
// - Classes are numbered by their slots' granules: class c holds slots of c * 16 bytes, so the hot
//   paths compute a slot's size from its class with no table. Sixteen classes, 1 to 16, step by
//   16 bytes up to 256 (SMALL_MAX): a request wastes at most 15 bytes, and a page at most 1024 mod
//   its slot size (192 bytes at worst, for 208). The shared preset has two more, 21 (336 bytes,
//   three a page) and 32 (512 bytes, two), for requests of up to SHARED_SMALL_MAX: sizes that cut
//   a page with little left over, since a page holds only a few of them. Numbers between belong
//   to no class (CLASS_SLOTS 0). A page of 1 KiB keeps what a class touched once small: a heap of
//   many sizes and few blocks pays at most 16 KiB (18 in the shared preset).

/** Sizes and shifts of the small-object layout. */
export const enum Page {
  SHIFT = 10,
  BYTES = 1024,
  /**
   * Slots start at multiples of a granule (16 bytes), and each granule of the arena has a mark
   * (SmallPages.marks): a page is GRANULES granules, granule g of the arena is page g >>> 6.
   */
  GRANULE_SHIFT = 4,
  GRANULES = 64,
  /** log2(GRANULES). */
  GRANULES_SHIFT = 6,
  /** The largest request the fast preset serves from pages. */
  SMALL_MAX = 256,
  /** The largest request the shared preset serves from pages. */
  SHARED_SMALL_MAX = 512,
  /**
   * The highest class number (classes are numbered from 1, 0 marks a page no class owns); a number
   * up to it that no class has (17 to 20, 22 to 31) has CLASS_SLOTS 0.
   */
  CLASSES = 32,
  /** The class byte of a spare page: its memory was given back to the kernel (it is mapped still). */
  GIVEN_BACK = 255,
  /**
   * A granule's mark (SmallPages.marks, an Int8Array): the first granule of a slot in use holds
   * LIVE + its class (so the mark alone gives free() the slot's size), or NOTED; the first granule
   * of a free slot holds the page-relative granule of the next free slot of its page (0..63), or
   * END at the last (or CACHED, while its class's slot cache holds it); every other granule
   * (inside a slot, past a page's last slot, in a page no class owns) is NOT_SLOT. So a mark alone
   * says whether an address is a slot of a page and whether it is in use.
   */
  END = 64,
  /** Not a mark itself: a slot of class c in use is marked LIVE + c, from LIVE + 1 to LIVE_MAX. */
  LIVE = -128,
  LIVE_MAX = -96,
  /**
   * The fast preset's: a slot in use with a name or an owner, whose free must forget them. Its
   * free takes the slow path, so the hot path never asks whether the slot has either.
   */
  NOTED = -95,
  /**
   * The shared preset's: a slot freed by a thread other than its page's owner, claimed from its
   * live mark with a compare-and-swap and waiting for the owner to take it back
   * (src/heap/shared-pages.ts).
   */
  REMOTE = -3,
  /**
   * The fast preset's: a free slot held by its class's slot cache (SmallPages.slotCache), which
   * malloc takes first; its page counts it as in use until the cache gives it back.
   */
  CACHED = -2,
  NOT_SLOT = -1,
  /**
   * The slot caches' layout (SmallPages.slotCache): class c's count at c << CACHE_SHIFT, then up to
   * CACHE_SLOTS granules of its cached slots, the last freed last.
   */
  CACHE_SHIFT = 4,
  CACHE_SLOTS = 15,
  /**
   * A page's facts packed in one Int32 (SmallPages.pageInfo), read and written whole on the hot
   * paths: its class in the low byte, the page-relative granule of its first free slot in bits 8
   * to 15 (END when the page is full), and how many of its slots are in use from bit 16.
   */
  INFO_CLASS = 0xff,
  INFO_HEAD_SHIFT = 8,
  INFO_HEAD = 0xff,
  INFO_USED_SHIFT = 16,
}

// The per-class tables have an entry for every value a page's class byte can hold, 0 past the last
// class, so that a lookup by any page's class is in bounds and a page no class owns has no slots.
/** The slot size of each class, by class number (0 for none). */
export const CLASS_SIZE: Uint16Array = new Uint16Array(256);
/** Slots in a page of each class (0 for none). */
export const CLASS_SLOTS: Uint16Array = new Uint16Array(256);
/** The class of a request of n bytes (n <= SHARED_SMALL_MAX), indexed by (n + 15) >>> 4. */
export const CLASS_OF: Uint8Array = new Uint8Array((Page.SHARED_SMALL_MAX >>> 4) + 1);

/** The slot sizes of the classes, smallest first. */
const SIZES = [16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 336, 512];

{
  for (const size of SIZES) {
    const c = size >>> 4;
    CLASS_SIZE[c] = size;
    CLASS_SLOTS[c] = Math.floor(Page.BYTES / size);
  }
  if (SIZES[SIZES.length - 1] !== Page.SHARED_SMALL_MAX || Page.CLASSES !== Page.SHARED_SMALL_MAX >>> 4 || CLASS_SIZE[Page.SMALL_MAX >>> 4] !== Page.SMALL_MAX ||
      Page.LIVE + Page.CLASSES !== Page.LIVE_MAX) {
    throw new Error('the small-object layout disagrees with its limits');
  }
  for (let i = 0, k = 0; i < CLASS_OF.length; i++) {
    while (SIZES[k]! < Math.max(16, i * 16)) k++;
    CLASS_OF[i] = SIZES[k]! >>> 4;
  }
}

/** Whether mark `m` is a slot in use: LIVE + its class, or NOTED. */
export function isLiveMark(m: number): boolean {
  return m <= Page.LIVE_MAX || m === Page.NOTED;
}

/** Whether `c` (any byte) is a class: a number a page's class byte may hold. */
export function isClass(c: number): boolean {
  return CLASS_SLOTS[c & 0xff]! !== 0;
}

/**
 * Whether a slot of `slotSize` bytes keeps a block reallocated to `size` bytes in place: while its
 * class holds it and is at most twice as large as it needs (a shrink to a much smaller class
 * moves, so that a large slot is not held for a few bytes).
 */
export function slotKeeps(size: number, slotSize: number): boolean {
  return size <= slotSize && 2 * CLASS_SIZE[CLASS_OF[(size + 15) >>> 4]!]! >= slotSize;
}
