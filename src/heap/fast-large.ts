// Large blocks of the fast preset: requests at or above `largeThreshold` get a mapping of their own,
// unmapped on free and resized by mremap. Like glibc, the threshold rises to the size of a freed
// large block, so a program that keeps allocating buffers of one size stops paying for mmap. A
// large block is known by its address in the `large` map alone: nothing about it is read from
// native memory.

import { alignPage, mapMemory, remapMemory, unmapMemory, viewMapping, MAX_VIEW_BYTES } from '../os/memory.js';
import { Block } from '../layout/fast.js';
import { checkAddress } from './arguments.js';
import { destroyedError, type HeapError } from './errors.js';
import { EMPTY_BYTES, LARGE_THRESHOLD_MAX, SCRIBBLE_BYTE, doubleFree, invalidPointer, type LargeBlock } from './fast-arena.js';
import { FastGrowth } from './fast-growth.js';

/** The fast preset's arena and its large blocks; ./fast-realloc.ts and ./fast-engine.ts build on it. */
export abstract class FastLarge extends FastGrowth {
  /** malloc, copy, free: realloc's way to move a block (./fast-realloc.ts). */
  protected abstract move(ptr: number, oldUsable: number, size: number, name: string | undefined): number;

  protected mallocLarge(size: number, name: string | undefined): number {
    if (this.destroyed) throw destroyedError();
    const length = alignPage(Math.max(size, 1));
    if (length > MAX_VIEW_BYTES || this.committed() + length > this.limit) return this.outOfMemory('malloc', size);
    this.mmapCalls++;
    const mapping = mapMemory(length, false);
    if (mapping === null) return this.outOfMemory('malloc', size);
    this.released.forget(mapping.address, mapping.address + length);
    const block: LargeBlock = { mapping, bytes: EMPTY_BYTES, name: name ?? '' };
    this.large.set(mapping.address, block);
    this.largeBytes += length;
    if ((this.inUse += length) > this.peakInUse) this.peakInUse = this.inUse;
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    if (this.scribble) this.largeView(block).fill(SCRIBBLE_BYTE);
    return mapping.address;
  }

  /** free() of an address outside the heap: NULL, a large block, or an error. */
  protected freeOutsideHeap(ptr: number): void {
    checkAddress('free', ptr);
    if (this.destroyed) throw destroyedError();
    if (ptr === 0) return;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) this.liveWord(h, ptr, 'free'); // throws: not a live block
    const block = this.large.get(ptr);
    if (block === undefined) throw this.notLarge(ptr, 'free');
    this.large.delete(ptr);
    this.released.add(ptr, ptr + 1);
    this.owners?.forget(ptr);
    const size = block.mapping.size;
    this.largeBytes -= size;
    this.inUse -= size;
    unmapMemory(block.mapping);
    this.munmapCalls++;
    // Like glibc: a program that frees a buffer of this size will likely ask for one again, and
    // from now on it comes from the heap.
    if (size >= this.largeThreshold && size < LARGE_THRESHOLD_MAX) {
      this.largeThreshold = size + 1;
      this.updateTrimThreshold();
    }
  }

  protected largeBlock(ptr: number, op: string): LargeBlock {
    const block = this.large.get(ptr);
    if (block !== undefined) return block;
    const h = ptr - this.base - Block.HEADER;
    if (h >= Block.HEADER && h < this.top) this.liveWord(h, ptr, op);
    throw this.notLarge(ptr, op);
  }

  /** The error for `ptr`, no large block's start: a double free where a large block was freed there, else an invalid pointer. */
  protected notLarge(ptr: number, op: string): HeapError {
    if (this.destroyed) return destroyedError();
    return this.released.holds(ptr) ? doubleFree(op, ptr) : invalidPointer(op, ptr);
  }

  protected reallocOutsideHeap(ptr: number, size: number, name: string | undefined): number {
    const block = this.largeBlock(ptr, 'realloc');
    if (size === 0) {
      this.freeOutsideHeap(ptr);
      return 0;
    }
    const capacity = block.mapping.size;
    if (name !== undefined) block.name = name;
    // Stay when the mapping still fits and would not be more than half empty.
    if (size <= capacity && size > capacity / 2) {
      if (this.scribble) this.largeView(block).fill(SCRIBBLE_BYTE, size);
      return ptr;
    }
    if (size >= this.largeThreshold) {
      const moved = this.remapLarge(ptr, block, size);
      if (moved !== 0) return moved;
    }
    return this.move(ptr, capacity, size, name ?? block.name);
  }

  /** Resizes a large block's mapping in the kernel (no copy, never two at once); 0 if it cannot. */
  protected remapLarge(ptr: number, block: LargeBlock, size: number): number {
    const length = alignPage(size);
    if (this.committed() - block.mapping.size + length > this.limit) return 0;
    const remapped = remapMemory(block.mapping, length, false);
    if (remapped === null) return 0;
    this.mmapCalls++;
    const old = block.mapping.size;
    this.large.delete(ptr);
    if (remapped.address !== ptr) this.released.add(ptr, ptr + 1);
    this.released.forget(remapped.address, remapped.address + length);
    const moved: LargeBlock = { mapping: remapped, bytes: EMPTY_BYTES, name: block.name };
    this.large.set(remapped.address, moved);
    this.owners?.moved(ptr, remapped.address);
    this.largeBytes += length - old;
    if ((this.inUse += length - old) > this.peakInUse) this.peakInUse = this.inUse;
    if (this.mapped() > this.peakMapped) this.peakMapped = this.mapped();
    if (this.scribble && length > old) this.largeView(moved).fill(SCRIBBLE_BYTE, old);
    return remapped.address;
  }

  /** The bytes of large block `block`, through a view made at the first call that needs one. */
  protected largeView(block: LargeBlock): Uint8Array {
    if (block.bytes.length === 0) block.bytes = new Uint8Array(viewMapping(block.mapping));
    return block.bytes;
  }
}
