// The classic preset, made by `new Heap({ preset: 'classic' })`: the course allocator's public calls
// and introspection (snapshot, stats, check), over the block layer in ./classic-blocks.ts, where
// the rules it keeps and how it proves what it reads from native memory are set out.

import { NATIVE_COPY_MIN, copyMemory, unmapMemory, MAX_VIEW_BYTES } from '../os/memory.js';
import { ALIGNMENT, HEADER_SIZE, MIN_BLOCK, classicBlockSize } from '../layout/classic.js';
import { callocBytes, checkName, checkRealloc, checkSize, toAddress } from './arguments.js';
import type { Address } from './types.js';
import { HeapError, destroyedError, hex } from './errors.js';
import { ClassicBlocks, SCRIBBLE_BYTE, corrupted } from './classic-blocks.js';
import { VIEW_FREE, VIEW_USED } from './heap.js';
import type { BlockInfo, HeapSnapshot, HeapStats, RegionInfo } from './types.js';

/** The classic preset. Made by `new Heap({ preset: 'classic' })`. */
export class ClassicHeap extends ClassicBlocks {
  // The public API (see HeapOperations in ./heap.ts).

  override malloc(size: number, name?: string): number {
    checkSize('malloc', 'size', size);
    checkName('malloc', name);
    const need = classicBlockSize(size);
    if (need > MAX_VIEW_BYTES) return this.outOfMemory('malloc', size);
    let b = this.search(this, need);
    if (b === 0) {
      b = this.mapRegion(need);
      if (b === 0) return this.outOfMemory('malloc', size);
    }
    return this.take(b, need, name);
  }

  override calloc(count: number, size: number, name?: string): number {
    const total = callocBytes(count, size);
    if (total < 0) return this.outOfMemory('calloc', `${count} × ${size}`);
    const ptr = this.malloc(total, name);
    if (ptr !== 0) this.fill(ptr, 0, total);
    return ptr;
  }

  override free(ptr: Address): void {
    ptr = toAddress('free', ptr);
    if (this.destroyed) throw destroyedError();
    if (ptr === 0) return;
    const b = this.liveBlock(ptr, 'free');
    this.release(b);
    this.owners?.forget(ptr);
  }

  override realloc(ptr: Address, size: number, name?: string): number {
    ptr = checkRealloc(ptr, size, name);
    if (ptr === 0) return this.malloc(size, name);
    const b = this.liveBlock(ptr, 'realloc');
    if (size === 0) {
      this.owners?.forget(ptr);
      this.release(b);
      return 0;
    }
    const need = classicBlockSize(size);
    if (need > MAX_VIEW_BYTES) return this.outOfMemory('realloc', size);
    const current = this.blockSize(b);

    if (need <= current) {
      this.splitTail(b, need);
      // Scribbled: the bytes past the new size, so that whatever the block regains later reads 0xAA.
      if (this.scribble) this.fill(ptr + size, SCRIBBLE_BYTE, this.blockSize(b) - HEADER_SIZE - size);
      if (name !== undefined) this.setName(b, name);
      return ptr;
    }

    const n = this.next(b);
    if (n !== 0 && this.sameRegion(b, n) && this.isFree(n) && current + this.blockSize(n) >= need) {
      this.proveSplit(b, current + this.blockSize(n), need, this.next(n));
      this.inUse += this.blockSize(n);
      this.absorb(b, n);
      this.splitTail(b, need);
      if (this.inUse > this.peakInUse) this.peakInUse = this.inUse;
      if (this.scribble) this.fill(b + current, SCRIBBLE_BYTE, this.blockSize(b) - current);
      if (name !== undefined) this.setName(b, name);
      return ptr;
    }

    const moved = this.malloc(size, name ?? this.nameOf(b));
    if (moved === 0) return 0;
    const from = this.regionOf(b);
    const to = this.regionOf(moved - HEADER_SIZE);
    const src = ptr - from.base;
    const dst = moved - to.base;
    const bytes = Math.min(current - HEADER_SIZE, size);
    // Within a region, copyWithin; between regions (mappings of their own), memcpy from
    // NATIVE_COPY_MIN bytes (one FFI call), else a view of the source set into the target's.
    if (from === to) to.u8.copyWithin(dst, src, src + bytes);
    else if (bytes >= NATIVE_COPY_MIN) copyMemory(moved, ptr, bytes);
    else to.u8.set(from.u8.subarray(src, src + bytes), dst);
    this.owners?.moved(ptr, moved);
    this.release(b);
    return moved;
  }

  override usableSize(ptr: Address): number {
    ptr = toAddress('usableSize', ptr);
    return this.blockSize(this.liveBlock(ptr, 'usableSize')) - HEADER_SIZE;
  }

  /** @internal See HeapOperations. */
  override blockAt(ptr: number, op: string): number {
    if (this.destroyed) throw destroyedError();
    // The last recorded start at or before the header that would precede `ptr`, in its region: the
    // block whose data holds it, if any does.
    const r = this.findRegion(ptr);
    // Outside every region: liveBlock names the error (a region given back, or no block of this heap).
    if (r === null) this.liveBlock(ptr, op);
    const b = r === null ? -1 : r.startAtOrBefore(ptr - HEADER_SIZE);
    // Inside a free block (not at its start, which is a use after free): no block's address.
    const inFree = b >= 0 && b + HEADER_SIZE !== ptr && this.blockSize(b) > 0 && this.isFree(b);
    const end = b < 0 || inFree ? 0 : b + this.blockSize(this.liveBlock(b + HEADER_SIZE, op, ptr));
    if (ptr >= end) throw new HeapError('ERR_INVALID_POINTER', `${op}(${hex(ptr)}): not inside a live block of this heap`, ptr);
    this.foundEnd = end;
    return b + HEADER_SIZE;
  }

  /** @internal See HeapOperations. */
  override rawBytes(_start: number, ptr: number, n: number): Uint8Array {
    const r = this.regionOf(ptr, n);
    const offset = ptr - r.base;
    return r.u8.subarray(offset, offset + n);
  }

  // Introspection.

  override snapshot(): HeapSnapshot {
    if (this.destroyed) throw destroyedError();
    const regions: RegionInfo[] = [];
    let current: { address: number; size: number; blocks: BlockInfo[] } | null = null;
    let steps = 0;
    for (let b = this.head; b !== 0; b = this.next(b)) {
      if (++steps > this.blockCount) throw corrupted('the block list is longer than the block count (a cycle?)', b);
      const region = this.regionOf(b);
      if (current === null || current.address !== region.base) {
        current = { address: region.base, size: region.size, blocks: [] };
        regions.push(current);
      }
      current.blocks.push({ address: b, size: this.blockSize(b), free: this.isFree(b), name: this.nameOf(b) });
    }
    const freeList: number[] = [];
    this.viewFreeList(freeList);
    return { regions, freeList };
  }

  /** @internal See HeapOperations. */
  override viewFreeList(out: number[]): void {
    const first = out.length;
    for (let b = this.freeHead; b !== 0; b = this.nextFree(b)) {
      if (out.length - first >= this.freeCount) throw corrupted('the free list is longer than the free count (a cycle?)', b);
      out.push(b);
    }
  }

  /** @internal See HeapOperations: a free block keeps the name it had, as print_memory shows. */
  override viewName(address: number): string {
    this.blockSize(address);
    return this.nameOf(address);
  }

  /** @internal See HeapOperations. */
  override viewFreeLog(): number[] {
    this.freeLog ??= [];
    return this.freeLog;
  }

  /** @internal See HeapOperations. */
  override viewRegions(out: number[]): void {
    if (this.destroyed) throw destroyedError();
    for (const r of this.sorted) out.push(r.base, r.size, HEADER_SIZE, -1);
  }

  /** @internal See HeapOperations. */
  override viewRegionAt(address: number, out: number[]): boolean {
    if (this.destroyed) throw destroyedError();
    const r = this.findRegion(address);
    if (r === null) return false;
    out.push(r.base, r.size, HEADER_SIZE);
    return true;
  }

  /** @internal See HeapOperations. */
  override viewBlocks(lo: number, hi: number, out: number[]): void {
    if (this.destroyed) throw destroyedError();
    const r = this.findRegion(lo);
    if (r === null) return;
    for (let b = Math.max(r.startAtOrBefore(lo), r.base); b < r.end && b < hi;) {
      const size = this.blockSize(b);
      out.push(b, size, this.isFree(b) ? VIEW_FREE : VIEW_USED);
      b += size;
    }
  }

  override stats(): HeapStats {
    if (this.destroyed) throw destroyedError();
    return {
      mapped: this.mapped,
      peakMapped: this.peakMapped,
      inUse: this.inUse,
      peakInUse: this.peakInUse,
      freeBytes: this.mapped - this.inUse,
      blocks: this.blockCount,
      usedBlocks: this.blockCount - this.freeCount,
      freeBlocks: this.freeCount,
      regions: this.regions.length,
      mmapCalls: this.mmapCalls,
      munmapCalls: this.munmapCalls,
    };
  }

  /** Proves every invariant of the layout; throws ERR_HEAP_CORRUPTED at the first that fails. */
  override check(): void {
    if (this.destroyed) throw destroyedError();
    let blocks = 0;
    let inUse = 0;
    const free = new Set<number>();
    let listed = this.head;
    let before = 0;
    for (const region of this.regions) {
      let b = region.base;
      let previousFree = false;
      let regionBlocks = 0;
      while (b < region.end) {
        if (listed !== b) throw corrupted(`the block list reaches ${hex(listed)} where a block starts at ${hex(b)}`, b);
        if (!region.isStart(b)) throw corrupted('a block starts where none was recorded', b);
        if (this.regionField(b) !== region.base) throw corrupted(`region field ${hex(this.regionField(b))}, expected ${hex(region.base)}`, b);
        if (this.rawPrev(b) !== before) throw corrupted(`prev link ${hex(this.rawPrev(b))}, expected ${hex(before)}`, b);
        const size = this.rawSize(b);
        if (size < MIN_BLOCK || size % ALIGNMENT !== 0 || b + size > region.end) {
          throw corrupted(`size ${size} does not fit region ${hex(region.base)}-${hex(region.end)}`, b);
        }
        const isFree = this.isFree(b);
        if (isFree && previousFree) throw corrupted('two free neighbours were not merged', b);
        if (isFree) free.add(b);
        else inUse += size;
        previousFree = isFree;
        blocks++;
        regionBlocks++;
        before = b;
        listed = this.rawNext(b);
        b += size;
      }
      if (b !== region.end) throw corrupted(`blocks overrun region ${hex(region.base)}`, b);
      if (region.countStarts() !== regionBlocks) throw corrupted('a block start is recorded inside a block', region.base);
      if (free.has(region.base) && this.rawSize(region.base) === region.size) {
        throw corrupted('a region that is one free block was not unmapped', region.base);
      }
    }
    if (listed !== 0) throw corrupted('the block list goes on past the last region', listed);
    if (this.tail !== before) throw corrupted(`tail is ${hex(this.tail)}, expected ${hex(before)}`, this.tail);

    let count = 0;
    let prevFree = 0;
    for (let b = this.freeHead; b !== 0; b = this.rawNextFree(b)) {
      if (!free.has(b)) throw corrupted('the free list holds a block that is not free, or holds one twice', b);
      if (this.rawPrevFree(b) !== prevFree) throw corrupted(`prev free link ${hex(this.rawPrevFree(b))}, expected ${hex(prevFree)}`, b);
      free.delete(b);
      prevFree = b;
      count++;
    }
    if (this.freeTail !== prevFree) throw corrupted(`free tail is ${hex(this.freeTail)}, expected ${hex(prevFree)}`, this.freeTail);
    if (free.size !== 0) throw corrupted('a free block is missing from the free list', free.values().next().value!);
    if (count !== this.freeCount || blocks !== this.blockCount || inUse !== this.inUse) {
      throw corrupted(`stats disagree with the walk: ${blocks} blocks, ${count} free, ${inUse} bytes in use; ` +
        `counted ${this.blockCount}, ${this.freeCount}, ${this.inUse}`, 0);
    }
  }

  /** Every call after destroy() throws ERR_HEAP_DESTROYED (the base class's helpers ask here first). */
  protected override assertLive(): void {
    if (this.destroyed) throw destroyedError();
  }

  /** Nothing to do: the classic preset unmaps a region the moment it is free. */
  override trim(): void {
    if (this.destroyed) throw destroyedError();
  }

  override destroy(): void {
    if (this.destroyed) return;
    this.owners?.clear();
    for (const region of this.regions) {
      unmapMemory(region.mapping);
      this.munmapCalls++;
    }
    this.regions.length = 0;
    this.sorted.length = 0;
    this.released.clear();
    this.lastRegion = null;
    this.head = this.tail = this.freeHead = this.freeTail = 0;
    this.mapped = this.inUse = this.blockCount = this.freeCount = 0;
    this.destroyed = true;
  }
}
