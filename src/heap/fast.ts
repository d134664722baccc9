// The fast preset, the default, made by `new Heap()` or `new Heap({ preset: 'fast' })`: its engine
// (./fast-engine.ts), check() (./fast-check.ts) and, here, what shows its state: snapshot (every
// region and block, the free lists and caches), stats; blockAt, which finds the live block an
// address falls in for bytes() and its kin; and the viewer's reads of the same state (view*:
// regions, blocks in a range, the free list, names, counts without walks). Every walk is bounded
// by the counts and proves each link before it follows it.

import { Block, Flag, Word } from '../layout/fast.js';
import { CLASS_SIZE, CLASS_SLOTS, Page, isLiveMark } from '../layout/pages.js';
import { destroyedError } from './errors.js';
import { doubleFree, invalidPointer } from './fast-arena.js';
import { FastCheck } from './fast-check.js';
import { VIEW_CACHED, VIEW_FREE, VIEW_USED } from './heap.js';
import type { BlockInfo, HeapSnapshot, HeapStats, RegionInfo } from './types.js';

export { CACHE_CLASSES, CACHE_MAX_BLOCK, CACHE_MAX_REQUEST, SCRIBBLE_BYTE, TRIM_MIN } from './fast-engine.js';

const classSize = CLASS_SIZE;
const classSlots = CLASS_SLOTS;

/** The fast preset, the default. Made by `new Heap()` or `new Heap({ preset: 'fast' })`. */
export class FastHeap extends FastCheck {
  /** @internal See HeapOperations. */
  override blockAt(ptr: number, op: string): number {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    const o = ptr - small.base;
    if (o >= 0 && o < small.top) {
      // A slot's start, the usual address, by its mark alone; any other by its page's slot size.
      const g = (o & 15) === 0 && isLiveMark(small.marks[o >>> Page.GRANULE_SHIFT]!) ? o >>> Page.GRANULE_SHIFT : small.slotAt(o);
      const start = small.base + (g << Page.GRANULE_SHIFT);
      if (g >= 0 && small.isLive(g)) {
        this.foundEnd = start + small.slotSize(o >>> Page.SHIFT);
        return start;
      }
      // The start of a freed block is a use after free; any other address is no block's.
      throw g >= 0 && start === ptr ? doubleFree(op, ptr) : invalidPointer(op, ptr);
    }
    const d = ptr - this.base;
    if (d >= 2 * Block.HEADER && d < this.top) {
      // The block whose data holds `ptr`, if any: the block found last, when the address falls in
      // it and it is still the same live block (its start recorded, its size word unchanged, so no
      // start lies inside it); else the last recorded start at or before the header that would
      // precede `ptr` (an address in a header finds the block before it, and fails).
      let h = this.lastSpan;
      if (h === 0 || d < h + Block.HEADER || d >= h + (this.lastSpanWord & Flag.SIZE_MASK) || !this.isStart(h) ||
          this.mem[(h >>> 2) + Word.SIZE] !== this.lastSpanWord) {
        h = this.startAtOrBefore(d - Block.HEADER);
      }
      if (h >= Block.HEADER) {
        const word = this.mem[(h >>> 2) + Word.SIZE]!;
        if (h + Block.HEADER !== d && (word & (Flag.FREE | Flag.CACHED)) !== 0) this.checkHeader(h, word);
        else if (d < h + (this.liveWord(h, ptr, op) & Flag.SIZE_MASK)) {
          this.lastSpan = h;
          this.lastSpanWord = word;
          this.foundEnd = this.base + h + (word & Flag.SIZE_MASK);
          return this.base + h + Block.HEADER;
        }
      }
      throw invalidPointer(op, ptr);
    }
    for (const [start, block] of this.large) {
      if (ptr >= start && ptr < start + block.mapping.size) {
        this.foundEnd = start + block.mapping.size;
        return start;
      }
    }
    throw this.notLarge(ptr, op);
  }

  /** @internal See HeapOperations. */
  override rawBytes(start: number, ptr: number, n: number): Uint8Array {
    const o = ptr - this.small.base;
    if (o >= 0 && o < this.small.top) return this.small.bytes.subarray(o, o + n);
    const d = ptr - this.base;
    if (d >= 0 && d < this.top) return this.bytesView.subarray(d, d + n);
    return this.largeView(this.large.get(start)!).subarray(ptr - start, ptr - start + n);
  }

  /** The blocks of the heap in address order (without the sentinel). */
  protected heapBlocks(): BlockInfo[] {
    const blocks: BlockInfo[] = [];
    const end = this.top - Block.HEADER;
    for (let h = Block.HEADER; h < end;) {
      const word = this.mem[(h >>> 2) + Word.SIZE]!;
      const size = word & Flag.SIZE_MASK;
      if (!this.isStart(h)) this.corrupted(h, 'a block starts where none was recorded');
      if (size < Block.MIN || h + size > end) this.corrupted(h, `size ${size} runs past the end of the heap`);
      const free = (word & (Flag.FREE | Flag.CACHED)) !== 0;
      blocks.push({ address: this.base + h, size, free, name: free ? '' : this.names.get(h) ?? '' });
      h += size;
    }
    return blocks;
  }

  /** Each committed page of the small arena as a region: its slots, or one free block for a pooled page. */
  protected smallRegions(): RegionInfo[] {
    const small = this.small;
    const regions: RegionInfo[] = [];
    for (const page of small.pages()) {
      const c = small.classOf(page);
      if (c === Page.GIVEN_BACK) continue;
      const address = small.base + page * Page.BYTES;
      if (c === 0) {
        regions.push({ address, size: Page.BYTES, blocks: [{ address, size: Page.BYTES, free: true, name: '' }] });
        continue;
      }
      const size = classSize[c]!;
      const blocks: BlockInfo[] = [];
      for (let slot = 0; slot < classSlots[c]!; slot++) {
        const at = address + slot * size;
        const free = !small.isLive(small.locate(at - small.base));
        blocks.push({ address: at, size, free, name: free ? '' : this.smallNames.get(at) ?? '' });
      }
      regions.push({ address, size: Page.BYTES, blocks });
    }
    return regions;
  }

  override snapshot(): HeapSnapshot {
    if (this.destroyed) throw destroyedError();
    const regions: RegionInfo[] = [];
    if (this.top > 0) regions.push({ address: this.base, size: this.top, blocks: this.heapBlocks() });
    regions.push(...this.smallRegions());
    for (const block of this.large.values()) {
      const { address, size } = block.mapping;
      regions.push({ address, size, blocks: [{ address, size, free: false, name: block.name }] });
    }
    const freeList: number[] = [];
    this.viewFreeList(freeList);
    return { regions, freeList };
  }

  /** @internal See HeapOperations: the lists in class order, then the caches, then the wide cache. */
  override viewFreeList(out: number[]): void {
    const { heads, count } = this.lists;
    const first = out.length;
    for (let i = 0; i < heads.length; i++) {
      for (let b = heads[i]!; b !== 0; b = this.mem[(b >>> 2) + Word.NEXT_FREE]!) {
        if (out.length - first >= count || !this.lists.isFreeIn(b, i)) this.corruptedList(b);
        out.push(this.base + b);
      }
    }
    for (let c = 0; c < this.cacheHeads.length; c++) {
      for (let b = this.cacheHeads[c]!, left = this.cacheCounts[c]! - 1; b !== 0; left--) {
        out.push(this.base + b);
        b = this.cacheLink(b, c, left);
      }
    }
    for (let i = 0; i < this.wideCount; i++) out.push(this.base + this.wide[i]!);
  }

  /** @internal See HeapOperations: stats() without the walk of the pages it makes for usedBlocks. */
  override viewCounts(out: number[]): void {
    const small = this.small;
    out.push((this.top > 0 ? 1 : 0) + this.large.size + small.pagesInUse + small.pooledPages,
      this.blockCount + this.large.size + small.slotsInPages + small.pooledPages, this.inUse, this.mapped(),
      this.top + (small.pagesInUse + small.pooledPages) * Page.BYTES + this.largeBytes);
  }

  /** @internal See HeapOperations: the small pages' log of pages that changed. */
  override viewRegionLog(): number[] {
    this.small.changes ??= [];
    return this.small.changes;
  }

  /** @internal See HeapOperations: a free block has none. */
  override viewName(address: number): string {
    const o = address - this.small.base;
    if (o >= 0 && o < this.small.top) return this.smallNames.get(address) ?? '';
    if (address >= this.base && address < this.base + this.top) return this.names.get(address - this.base) ?? '';
    return this.large.get(address)?.name ?? '';
  }

  /** @internal See HeapOperations. */
  override viewCached(): number {
    return this.cachedBlocks();
  }

  /** @internal See HeapOperations: the arena, the small pages in use or pooled, the large blocks. */
  override viewRegions(out: number[]): void {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    // The arena and the large blocks (few), sorted, merged with the pages (in address order).
    const others: number[][] = [];
    if (this.top > 0) others.push([this.base, this.top, Block.HEADER, this.blockCount]);
    for (const block of this.large.values()) others.push([block.mapping.address, block.mapping.size, 0, 1]);
    others.sort((a, b) => a[0]! - b[0]!);
    let o = 0;
    const end = small.fresh >>> Page.SHIFT;
    for (let page = small.firstPage; page < end; page++) {
      const c = small.classOf(page);
      if (c === Page.GIVEN_BACK) continue;
      const address = small.base + page * Page.BYTES;
      while (o < others.length && others[o]![0]! < address) out.push(...others[o++]!);
      out.push(address, Page.BYTES, 0, c === 0 ? 1 : classSlots[c]!);
    }
    while (o < others.length) out.push(...others[o++]!);
  }

  /** @internal See HeapOperations. */
  override viewRegionAt(address: number, out: number[]): boolean {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    const o = address - small.base;
    if (o >= 0 && o < small.top) {
      const page = o >>> Page.SHIFT;
      if (page < small.firstPage || page >= small.fresh >>> Page.SHIFT || small.classOf(page) === Page.GIVEN_BACK) return false;
      out.push(small.base + page * Page.BYTES, Page.BYTES, 0);
      return true;
    }
    if (address >= this.base && address < this.base + this.top) {
      out.push(this.base, this.top, Block.HEADER);
      return true;
    }
    for (const block of this.large.values()) {
      const { address: start, size } = block.mapping;
      if (address >= start && address < start + size) {
        out.push(start, size, 0);
        return true;
      }
    }
    return false;
  }

  /** @internal See HeapOperations. */
  override viewBlocks(lo: number, hi: number, out: number[]): void {
    if (this.destroyed) throw destroyedError();
    const small = this.small;
    const o = lo - small.base;
    if (o >= 0 && o < small.top) {
      const page = o >>> Page.SHIFT;
      const at = small.base + page * Page.BYTES;
      const c = small.classOf(page);
      if (c === Page.GIVEN_BACK) return;
      if (c === 0) {
        out.push(at, Page.BYTES, VIEW_FREE);
        return;
      }
      const size = classSize[c]!;
      const first = Math.max(0, Math.floor((lo - at) / size));
      for (let slot = first; slot < classSlots[c]! && at + slot * size < hi; slot++) {
        const g = small.locate(at + slot * size - small.base);
        out.push(at + slot * size, size, small.isLive(g) ? VIEW_USED : VIEW_FREE);
      }
      return;
    }
    const d = lo - this.base;
    if (d >= 0 && d < this.top) {
      const end = this.top - Block.HEADER;
      let h = this.startAtOrBefore(Math.max(d, Block.HEADER));
      if (h < 0) h = Block.HEADER;
      for (; h < end && this.base + h < hi;) {
        const word = this.mem[(h >>> 2) + Word.SIZE]!;
        const size = word & Flag.SIZE_MASK;
        if (!this.isStart(h)) this.corrupted(h, 'a block starts where none was recorded');
        if (size < Block.MIN || h + size > end) this.corrupted(h, `size ${size} runs past the end of the heap`);
        if (this.base + h + size > lo) {
          out.push(this.base + h, size, (word & Flag.CACHED) !== 0 ? VIEW_CACHED : (word & Flag.FREE) !== 0 ? VIEW_FREE : VIEW_USED);
        }
        h += size;
      }
      return;
    }
    for (const block of this.large.values()) {
      const { address, size } = block.mapping;
      if (lo >= address && lo < address + size) out.push(address, size, VIEW_USED);
    }
  }

  override stats(): HeapStats {
    if (this.destroyed) throw destroyedError();
    const mapped = this.mapped();
    const cached = this.cachedBlocks();
    const small = this.small;
    const smallUsage = small.usage();
    return {
      mapped,
      peakMapped: this.peakMapped,
      inUse: this.inUse,
      peakInUse: this.peakInUse,
      freeBytes: mapped - this.inUse,
      blocks: this.blockCount + this.large.size + small.slotsInPages + small.pooledPages,
      usedBlocks: this.blockCount - this.lists.count - cached + this.large.size + smallUsage.slots,
      freeBlocks: this.lists.count + cached + small.slotsInPages - smallUsage.slots + small.pooledPages,
      regions: (this.top > 0 ? 1 : 0) + this.large.size + small.pagesInUse + small.pooledPages,
      mmapCalls: this.mmapCalls + small.mmapCalls,
      munmapCalls: this.munmapCalls + small.munmapCalls,
    };
  }
}

