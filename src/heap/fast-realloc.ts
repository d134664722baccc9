// realloc of the fast preset, and what it shares with malloc: naming a block and copying one.
// - A small block keeps its slot while the new size's class is no larger and at least half as
//   large; else it moves. An unnamed request for a slot with no name or owner, nothing scribbled,
//   takes the fast path: its mark proves the address and gives its class, as in free.
// - A medium block shrinks in place (the tail freed and merged) and grows in place into a free
//   next block, or, at the top of the arena, into memory committed for it; past the large-block
//   threshold only the last block grows in place. Otherwise it moves.
// - A large block is resized by mremap (./fast-large.ts).
// A move is malloc, a copy and free: within one view by copyWithin or a word loop, across
// mappings by memcpy from NATIVE_COPY_MIN bytes. Every address is validated as free validates it,
// and a block whose size cannot be proved is ERR_HEAP_CORRUPTED before anything is written.

import { Block, Flag, Word, fastBlockSize } from '../layout/fast.js';
import { CLASS_OF, CLASS_SIZE, Page, slotKeeps } from '../layout/pages.js';
import { checkRealloc } from './arguments.js';
import type { Address } from './types.js';
import { ARENA_BYTES, SCRIBBLE_BYTE, doubleFree } from './fast-arena.js';
import { FastLarge } from './fast-large.js';
import { NATIVE_COPY_MIN, copyMemory } from '../os/memory.js';

/** The largest request a block of the arena may grow to in place. */
const MAX_ARENA_REQUEST = ARENA_BYTES / 4;

// Module-level consts, as in ./fast-engine.ts: V8 folds them where an imported binding is read
// through a module cell.
const blockSize = fastBlockSize;
const classOfRequest = CLASS_OF;
const classSize = CLASS_SIZE;

/** realloc and the block operations it shares with malloc; ./fast-engine.ts builds the hot paths on it. */
export abstract class FastRealloc extends FastLarge {
  override realloc(ptr: Address, size: number, name?: string): number {
    // The fast path: an unnamed request of 1 to SMALL_MAX bytes for a slot in use with no name or
    // owner, nothing scribbled. The slot's mark proves the address and says its class (as in free),
    // and the slot stays while slotKeeps would keep it. Else moveSlot moves the block to a slot of
    // the new class, passed and returning offsets (small integers): a double passed to a call V8
    // does not inline, or returned from one, is boxed in a new HeapNumber, and this part is small
    // enough for V8 to inline beside malloc and free. Anything else takes reallocSlow.
    if (typeof ptr === 'number' && typeof size === 'number' && (size >>> 0) === size && size !== 0 && size <= Page.SMALL_MAX &&
        name === undefined && this.scribble !== true) {
      const small = this.small;
      const o = ptr - small.base;
      if ((o >>> 0) === o && o < small.top && (o & 15) === 0) {
        const mark = small.marks[o >>> Page.GRANULE_SHIFT]!;
        if (mark <= Page.LIVE_MAX) {
          if (slotKeeps(size, (mark - Page.LIVE) << 4)) return ptr;
          const moved = this.moveSlot(o, mark - Page.LIVE, size);
          if (moved >= 0) return small.base + moved;
        }
      }
    }
    return this.reallocSlow(ptr, size, name);
  }

  /**
   * Moves the unnamed slot in use at offset `o` of the small arena, of class `old`, to a slot for
   * `size` bytes (1 to SMALL_MAX, a class slotKeeps does not keep) from its class's slot cache or a
   * page with room; the old slot goes to its own class's cache. Returns the new slot's offset, or
   * -1, having changed nothing, when the class has no slot at hand (reallocSlow refills it).
   */
  private moveSlot(o: number, old: number, size: number): number {
    const small = this.small;
    const c = (size + 15) >>> 4;
    const cached = small.slotCache[c << Page.CACHE_SHIFT]!;
    if (cached === 0 && small.avail[c] === 0) return -1;
    const moved = (cached !== 0 ? small.takeCached(c) : small.takeSlot(c)) << Page.GRANULE_SHIFT;
    this.copySlot(o, moved, (c < old ? c : old) << 4);
    small.cacheSlot(o >>> Page.GRANULE_SHIFT, old);
    if ((this.inUse += (c - old) << 4) > this.peakInUse) this.peakInUse = this.inUse;
    return moved;
  }

  /** realloc past the fast path: every check, and every kind of block. */
  private reallocSlow(ptr: Address, size: number, name: string | undefined): number {
    ptr = checkRealloc(ptr, size, name);
    if (ptr === 0) return this.malloc(size, name);
    const at = this.small.locate(ptr - this.small.base);
    if (at >= 0) return this.reallocSmall(ptr, at, size, name);
    const h = ptr - this.base - Block.HEADER;
    if (!(h >= Block.HEADER && h < this.top)) return this.reallocOutsideHeap(ptr, size, name);
    const sizeWord = this.liveWord(h, ptr, 'realloc');
    const current = sizeWord & Flag.SIZE_MASK;
    if (size === 0) {
      this.free(ptr);
      return 0;
    }
    // A block in the arena stays there while it can grow in place, past largeThreshold too (as in
    // glibc): a buffer grown step by step at the top of the heap is never copied.
    if (size > MAX_ARENA_REQUEST) return this.move(ptr, current - Block.HEADER, size, name);
    const need = blockSize(size);
    const mem = this.mem;
    const w = h >>> 2;

    if (need <= current) {
      const split = current - need >= Block.MIN;
      // The tail merges with a free next block: that block is proved before the tail is written.
      if (split) this.freeMergeable(h + current);
      // Scribbled: the bytes past the new size, so that whatever the block regains later reads 0xAA.
      if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + Block.HEADER + size, h + (split ? need : current));
      if (split) {
        // Shrink: the tail becomes a block of its own, freed (and merged with a free next block).
        // It is written free before release files it: a shared heap's thread ended in between
        // leaves free space for the repair's walk, not a block in use that no one holds.
        const t = h + need;
        const tail = current - need;
        mem[w + Word.SIZE] = need | (sizeWord & (Flag.NAMED | Flag.OWNED));
        mem[(t >>> 2) + Word.PREV_SIZE] = need;
        this.makeBlock(t, tail, tail | Flag.FREE);
        this.inUse -= tail;
        this.release(t, tail, true);
      }
      if (name !== undefined) this.nameBlock(h, name);
      return ptr;
    }

    // Grow into the next block when it is free and large enough. At the top of the heap (the next
    // block is the sentinel, or a free block just before it), commit more memory first. Blocks the
    // wide cache holds merge back first, so a neighbour freed just before counts as free.
    if (this.wideCount !== 0) this.flushWide();
    const n = h + current;
    let nsize = this.freeSizeAt(n);
    const atTop = n === this.top - Block.HEADER || (nsize !== 0 && n + nsize === this.top - Block.HEADER);
    // Past largeThreshold, only the last block grows in place (commit is cheaper than a copy);
    // any other moves to a mapping of its own, which mremap then resizes without copying.
    if (size >= this.largeThreshold && !atTop) return this.move(ptr, current - Block.HEADER, size, name);
    if (current + nsize < need && atTop && this.growTop(need - current) !== 0) nsize = this.freeSizeAt(n);
    if (nsize !== 0 && current + nsize >= need) {
      if (!this.lists.remove(n, nsize)) this.corruptedList();
      this.clearStart(n);
      let total = current + nsize;
      const rest = total - need;
      this.unpurge(n, rest >= Block.MIN ? h + need + Block.MIN : h + total + Block.HEADER);
      if (rest >= Block.MIN) {
        this.splitOff(h, need, rest);
        total = need;
      } else {
        mem[(h + total) >>> 2] = total;
      }
      mem[w + Word.SIZE] = total | (sizeWord & (Flag.NAMED | Flag.OWNED));
      this.touch(h + total);
      if ((this.inUse += total - current) > this.peakInUse) this.peakInUse = this.inUse;
      if (this.scribble === true) this.bytesView.fill(SCRIBBLE_BYTE, h + current, h + total);
      if (name !== undefined) this.nameBlock(h, name);
      return ptr;
    }
    return this.move(ptr, current - Block.HEADER, size, name);
  }

  /** realloc of the small block at `ptr`, the slot at granule `g`: it stays while its class does. */
  private reallocSmall(ptr: number, g: number, size: number, name: string | undefined): number {
    const small = this.small;
    if (!small.isLive(g)) throw doubleFree('realloc', ptr);
    const slotSize = small.slotSize(g >>> Page.GRANULES_SHIFT);
    if (size === 0) {
      this.free(ptr);
      return 0;
    }
    if (slotKeeps(size, slotSize)) {
      if (this.scribble && size < slotSize) {
        const o = ptr - this.small.base;
        this.small.bytes.fill(SCRIBBLE_BYTE, o + size, o + slotSize);
      }
      if (name !== undefined) this.nameSmall(ptr, name);
      return ptr;
    }
    // To another class with a page that has room, when the block has no name or owner and nothing
    // is scribbled: a slot taken, the bytes copied, the old slot given back, with no
    // second proof of the address malloc and free would make.
    if (size <= Page.SMALL_MAX && name === undefined && small.marks[g] !== Page.NOTED && this.scribble !== true) {
      const c = classOfRequest[(size + 15) >>> 4]!;
      if (small.avail[c] !== 0) {
        const moved = small.takeSlot(c) << Page.GRANULE_SHIFT;
        this.copySlot(ptr - small.base, moved, slotSize < size ? slotSize : size);
        small.releaseSlot(g);
        if ((this.inUse += classSize[c]! - slotSize) > this.peakInUse) this.peakInUse = this.inUse;
        return small.base + moved;
      }
    }
    return this.move(ptr, slotSize, size, name);
  }

  /** Copies `n` bytes from slot offset `from` to slot offset `to` of the small arena (both multiples of 16). */
  protected copySlot(from: number, to: number, n: number): void {
    // At most SMALL_MAX bytes: a word loop, cheaper for a few words than a call to copyWithin.
    const words = this.small.words;
    const f = from >>> 2;
    const t = to >>> 2;
    const count = n >>> 2;
    for (let i = 0; i < count; i++) words[t + i] = words[f + i]!;
    const bytes = this.small.bytes;
    for (let i = count << 2; i < n; i++) bytes[to + i] = bytes[from + i]!;
  }

  /** malloc, copy `min(oldUsable, size)` bytes, free. 0 (old block untouched) if malloc fails. */
  protected override move(ptr: number, oldUsable: number, size: number, name: string | undefined): number {
    const moved = this.malloc(size, name ?? this.nameAt(ptr));
    if (moved === 0) return 0;
    const n = Math.min(oldUsable, size);
    const from = ptr - this.small.base;
    const to = moved - this.small.base;
    // Slot to slot (a small block changing class) or block to block in the medium arena: a copy
    // within the arena's own view, no views made.
    const a = ptr - this.base;
    const b = moved - this.base;
    // Across mappings (small pages, the arena, large mappings), memcpy from NATIVE_COPY_MIN bytes:
    // one FFI call, where views of both blocks cost two typed arrays made.
    if (from >= 0 && from < this.small.top && to >= 0 && to < this.small.top) this.copySlot(from, to, n);
    else if (a >= 0 && a < this.top && b >= 0 && b < this.top) this.bytesView.copyWithin(b, a, a + n);
    else if (n >= NATIVE_COPY_MIN) copyMemory(moved, ptr, n);
    else this.viewOf(moved, n).set(this.viewOf(ptr, n));
    this.owners?.moved(ptr, moved);
    this.free(ptr);
    // The block the buffer outgrew is not asked for again at its size: held, it would pin a hole.
    if (this.wideCount !== 0) this.flushWide();
    return moved;
  }

  /** `n` bytes at a validated address, as a view. */
  protected viewOf(ptr: number, n: number): Uint8Array {
    const o = ptr - this.small.base;
    if (o >= 0 && o < this.small.top) return this.small.bytes.subarray(o, o + n);
    const large = this.large.get(ptr);
    if (large !== undefined) return this.largeView(large).subarray(0, n);
    const offset = ptr - this.base;
    return this.bytesView.subarray(offset, offset + n);
  }

  /** The name of the block at `ptr`, or undefined; a map is asked only when it holds any entry. */
  private nameAt(ptr: number): string | undefined {
    if (this.smallNamed !== 0 && this.smallNames.has(ptr)) return this.smallNames.get(ptr);
    if (this.large.size !== 0) {
      const large = this.large.get(ptr);
      if (large !== undefined) return large.name;
    }
    return this.names.size === 0 ? undefined : this.names.get(ptr - this.base - Block.HEADER);
  }

  /** Names the slot in use at `ptr` ('' removes its name); a named slot is marked NOTED and stays so until freed. */
  protected nameSmall(ptr: number, name: string): void {
    if (name === '') {
      this.smallNames.delete(ptr);
    } else {
      this.smallNames.set(ptr, name);
      this.small.marks[(ptr - this.small.base) >>> Page.GRANULE_SHIFT] = Page.NOTED;
    }
    this.smallNamed = this.smallNames.size;
  }

  protected nameBlock(h: number, name: string): void {
    const w = (h >>> 2) + Word.SIZE;
    if (name === '') {
      this.mem[w]! &= ~Flag.NAMED;
      this.names.delete(h);
    } else {
      this.mem[w]! |= Flag.NAMED;
      this.names.set(h, name);
    }
  }
}
