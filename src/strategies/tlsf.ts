// Two-level segregated free lists (the TLSF scheme): O(1) insert, remove and good-fit search.
//
// Free blocks are sorted into classes by size. Below SMALL_LIMIT each class is one 16-byte step;
// above it, a first level picks the power of two (fl) and a second level splits that range into
// SL_COUNT equal steps (sl). One bitmap says which first-level ranges have any free block, one
// bitmap per range says which of its classes do, so finding the smallest non-empty class that
// fits is two find-first-set operations. A request is rounded up to the next class boundary
// before the search, so every block in the class found is large enough.
//
// The lists are doubly linked through the free blocks themselves (see src/layout/fast.ts), by
// header offset; the heads and bitmaps live here.
//
// The links live in native memory, where a write after free can put any value, so none is followed
// before it is proved: a link must be 0 or the offset of a recorded block start (the start bitmap,
// which native code cannot reach) below `limit`, whose header says free, of a size filed under the
// same class, whose own link back is the block it was reached from. A link that fails makes the
// operation refuse (remove returns false, takeFit -1) before anything is written, and `damaged`
// names the block whose link failed.

import { Block, Flag, Word } from '../layout/fast.js';

export const SL_LOG2 = 5;
export const SL_COUNT = 1 << SL_LOG2;
/** Sizes below this map linearly, one class per 16 bytes. */
export const SMALL_LIMIT = SL_COUNT * 16;
const FL_SHIFT = 31 - Math.clz32(SMALL_LIMIT) - 1;
/** Enough first-level ranges for any size below 2^32. */
export const FL_COUNT = 32 - FL_SHIFT;

/** The class a free block of `size` bytes is filed under (rounding down). */
export function classOf(size: number): number {
  if (size < SMALL_LIMIT) return size >>> 4;
  const f = 31 - Math.clz32(size);
  return ((f - FL_SHIFT) << SL_LOG2) | ((size >>> (f - SL_LOG2)) & (SL_COUNT - 1));
}

export class SegregatedLists {
  /** Header offset of the first block of each class, 0 when empty. */
  heads: Uint32Array<ArrayBufferLike> = new Uint32Array(FL_COUNT * SL_COUNT);
  /** Bit sl of slMaps[fl]: class (fl, sl) is non-empty. */
  slMaps: Int32Array<ArrayBufferLike> = new Int32Array(FL_COUNT);
  /** Bit fl: slMaps[fl] is non-zero. */
  flMap = 0;
  /** How many blocks are on the lists. */
  count = 0;
  /** The arena, as words. */
  mem: Uint32Array;
  /** Offsets at or past this are not committed: a link there means the list was overwritten. */
  limit = 0;
  /** The block whose links were last found damaged, for the error message. */
  damaged = 0;
  /** Bit (offset >>> 4) is set where a block header starts; kept by the heap. */
  starts: Int32Array<ArrayBufferLike> = new Int32Array(0);

  constructor(mem: Uint32Array) {
    this.mem = mem;
  }

  insert(block: number, size: number): void {
    const i = classOf(size);
    const head = this.heads[i]!;
    const w = block >>> 2;
    this.mem[w + Word.NEXT_FREE] = head;
    this.mem[w + Word.PREV_FREE] = 0;
    if (head !== 0) this.mem[(head >>> 2) + Word.PREV_FREE] = block;
    this.heads[i] = block;
    this.slMaps[i >>> SL_LOG2]! |= 1 << (i & (SL_COUNT - 1));
    this.flMap |= 1 << (i >>> SL_LOG2);
    this.count++;
  }

  /**
   * Whether `b` (non-zero) is a free block filed under class `i`: a recorded start below the limit
   * whose header says free, of a size in that class that ends inside the heap.
   */
  isFreeIn(b: number, i: number): boolean {
    if (b >= this.limit || (b & Flag.MASK) !== Block.HEADER || (this.starts[b >>> 9]! & (1 << ((b >>> 4) & 31))) === 0) return false;
    const word = this.mem[(b >>> 2) + Word.SIZE]!;
    const size = word & Flag.SIZE_MASK;
    return (word & Flag.MASK) === Flag.FREE && size >= Block.MIN && b + size <= this.limit - Block.HEADER && classOf(size) === i;
  }

  /**
   * Whether free block `block`, of `size` bytes, sits on its list as its links say: its prev link is
   * 0 exactly when it heads its class, and each link that is not 0 leads to another free block of
   * the class that links back to it. Reads only.
   */
  linked(block: number, size: number): boolean {
    const mem = this.mem;
    const w = block >>> 2;
    const next = mem[w + Word.NEXT_FREE]!;
    const prev = mem[w + Word.PREV_FREE]!;
    const i = classOf(size);
    if (next === block || prev === block) return false;
    if (prev === 0 ? this.heads[i] !== block : this.heads[i] === block || !this.isFreeIn(prev, i) || mem[(prev >>> 2) + Word.NEXT_FREE] !== block) return false;
    return next === 0 || (this.isFreeIn(next, i) && mem[(next >>> 2) + Word.PREV_FREE] === block);
  }

  /** Takes `block`, a free block of `size` bytes, off its list. Returns false, changing nothing, if its links are damaged. */
  remove(block: number, size: number): boolean {
    if (!this.linked(block, size)) {
      this.damaged = block;
      return false;
    }
    this.unlink(block, size);
    return true;
  }

  /**
   * Takes `block` off its list with no proof: only for a block `linked` has just proved, or one
   * whose links only such an unlink has written since.
   */
  unlink(block: number, size: number): void {
    const mem = this.mem;
    const w = block >>> 2;
    const next = mem[w + Word.NEXT_FREE]!;
    const prev = mem[w + Word.PREV_FREE]!;
    const i = classOf(size);
    if (prev === 0) {
      this.heads[i] = next;
      if (next === 0) this.clearClass(i);
    } else {
      this.mem[(prev >>> 2) + Word.NEXT_FREE] = next;
    }
    if (next !== 0) this.mem[(next >>> 2) + Word.PREV_FREE] = prev;
    this.count--;
  }

  /**
   * Takes a free block of at least `size` bytes: the first of the smallest class whose every block
   * is large enough (or, above SMALL_LIMIT, the first of size's own class when it happens to fit).
   * Returns its offset, 0 when there is none, or -1 when the list's links are damaged.
   */
  takeFit(size: number): number {
    let fl: number;
    let sl: number;
    if (size < SMALL_LIMIT) {
      fl = 0;
      sl = size >>> 4;
    } else {
      // The class of `size` itself may hold blocks that fit: its first one is worth one look.
      const own = classOf(size);
      const first = this.heads[own]!;
      if (first !== 0 && first < this.limit && (this.mem[(first >>> 2) + Word.SIZE]! & Flag.SIZE_MASK) >= size) return this.popHead(own);
      const rounded = size + (1 << (31 - Math.clz32(size) - SL_LOG2)) - 1;
      const f = 31 - Math.clz32(rounded);
      fl = f - FL_SHIFT;
      sl = (rounded >>> (f - SL_LOG2)) & (SL_COUNT - 1);
    }
    let slMap = this.slMaps[fl]! & (-1 << sl);
    if (slMap === 0) {
      const flMap = this.flMap & (-1 << (fl + 1));
      if (flMap === 0) return 0;
      fl = 31 - Math.clz32(flMap & -flMap);
      slMap = this.slMaps[fl]!;
    }
    sl = 31 - Math.clz32(slMap & -slMap);
    return this.popHead((fl << SL_LOG2) | sl);
  }

  /**
   * Takes a block of at least `size` bytes from size's own class, where takeFit looks only at the
   * first (the class also holds blocks a little smaller): the first that fits among its first
   * `most` blocks, each proved before its size is believed. 0 when none does, -1 when a link is
   * damaged. For the moment before the heap would grow, when a close fit is worth a short walk.
   */
  takeOwnFit(size: number, most: number): number {
    if (size < SMALL_LIMIT) return 0;
    const i = classOf(size);
    let b = this.heads[i]!;
    for (let n = 0; b !== 0 && n < most; n++) {
      if (!this.isFreeIn(b, i)) {
        this.damaged = b;
        return -1;
      }
      const bsize = this.mem[(b >>> 2) + Word.SIZE]! & Flag.SIZE_MASK;
      if (bsize >= size) return this.remove(b, bsize) ? b : -1;
      b = this.mem[(b >>> 2) + Word.NEXT_FREE]!;
    }
    return 0;
  }

  /**
   * Takes the first block of the smallest non-empty class from `from` up (every block there being
   * larger than any of class `from - 1`): 0 when there is none, -1 when its links are damaged.
   */
  takeFrom(from: number): number {
    let fl = from >>> SL_LOG2;
    if (fl >= FL_COUNT) return 0;
    let slMap = this.slMaps[fl]! & (-1 << (from & (SL_COUNT - 1)));
    if (slMap === 0) {
      const flMap = fl + 1 < 32 ? this.flMap & (-1 << (fl + 1)) : 0;
      if (flMap === 0) return 0;
      fl = 31 - Math.clz32(flMap & -flMap);
      slMap = this.slMaps[fl]!;
    }
    return this.popHead((fl << SL_LOG2) | (31 - Math.clz32(slMap & -slMap)));
  }

  /** Takes the first block of class `i` (which is not empty); -1 if its links are damaged. */
  private popHead(i: number): number {
    const mem = this.mem;
    const block = this.heads[i]!;
    if (!this.isFreeIn(block, i) || !this.linked(block, this.mem[(block >>> 2) + Word.SIZE]! & Flag.SIZE_MASK)) {
      this.damaged = block;
      return -1;
    }
    const next = mem[(block >>> 2) + Word.NEXT_FREE]!;
    this.heads[i] = next;
    if (next !== 0) this.mem[(next >>> 2) + Word.PREV_FREE] = 0;
    else this.clearClass(i);
    this.count--;
    return block;
  }

  private clearClass(i: number): void {
    const fl = i >>> SL_LOG2;
    const map = this.slMaps[fl]! & ~(1 << (i & (SL_COUNT - 1)));
    this.slMaps[fl] = map;
    if (map === 0) this.flMap &= ~(1 << fl);
  }

  /** Forgets every block (the arena was released). */
  clear(): void {
    this.heads.fill(0);
    this.slMaps.fill(0);
    this.flMap = 0;
    this.count = 0;
  }
}
