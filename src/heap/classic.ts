// The classic engine: the course allocator, rule for rule (see src/layout/classic.ts and the
// README). One mmap per region, sized to the request that needed it; every block on one list in
// region-then-address order; one free list in the order blocks were freed, searched by first, best
// or worst fit; split only when the rest is at least MIN_BLOCK; merge with free neighbours in the
// same region; unmap a region as soon as it is one free block.
//
// All native memory is read through the Region objects below. Every address is first resolved to
// the region that holds it, so a bad link or a forged pointer becomes a HeapError, never a read of
// memory we do not own.
//
// Every header field and link lives in native memory, where a write after free or an overflow can
// put any value, so none is believed before it is proved against what JavaScript keeps (the
// regions, their start bitmaps, the heads, tails and counts): a block-list link must lead to the
// block the sizes say comes next (or the next region's first block), a free-list link to a recorded
// start of a free block whose link back agrees, a size to the next recorded start or the region's
// end. The raw* accessors read a field as it is; the others prove it, and a field that fails is
// ERR_HEAP_CORRUPTED before anything is written. Walks are bounded by the counts.

import { alignPage, mapMemory, unmapMemory, MAX_VIEW_BYTES, type Mapping } from '../os/memory.js';
import {
  ALIGNMENT, FREE_BIT, HEADER_SIZE, MIN_BLOCK, NAME_BYTES,
  OFF_NAME, OFF_NEXT, OFF_NEXT_FREE, OFF_PREV, OFF_PREV_FREE, OFF_REGION, OFF_SIZE,
  classicBlockSize,
} from '../layout/classic.js';
import { FIT_SEARCH, type FitSearch, type FreeList } from '../strategies/fit.js';
import { callocBytes, checkAddress, checkName, checkRealloc, checkSize } from './arguments.js';
import { HeapError, destroyedError, hex } from './errors.js';
import { Heap, type HeapOperations } from './heap.js';
import type { ResolvedOptions } from './options.js';
import type { BlockInfo, HeapSnapshot, HeapStats, RegionInfo } from './types.js';

const TWO_32 = 2 ** 32;
const SCRIBBLE_BYTE = 0xaa;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** One mapping, its views, and a bitmap of where blocks start (kept in JS, out of users' reach). */
class Region {
  /** Its place in the heap's regions, in the order they were mapped (kept by the heap). */
  order = 0;
  readonly base: number;
  readonly size: number;
  readonly end: number;
  readonly mapping: Mapping;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  /** Bit g is set when a block header starts at base + 16 * g. */
  private readonly starts: Uint8Array;

  constructor(mapping: Mapping) {
    this.mapping = mapping;
    this.base = mapping.address;
    this.size = mapping.size;
    this.end = mapping.address + mapping.size;
    this.u8 = new Uint8Array(mapping.buffer);
    this.u32 = new Uint32Array(mapping.buffer);
    this.starts = new Uint8Array(Math.ceil(mapping.size / ALIGNMENT / 8));
  }

  contains(address: number): boolean {
    return address >= this.base && address < this.end;
  }

  isStart(address: number): boolean {
    const offset = address - this.base;
    if (offset < 0 || offset >= this.size || offset % ALIGNMENT !== 0) return false;
    const g = offset / ALIGNMENT;
    return (this.starts[g >>> 3]! & (1 << (g & 7))) !== 0;
  }

  countStarts(): number {
    let n = 0;
    for (let i = 0; i < this.starts.length; i++) {
      for (let bits = this.starts[i]!; bits !== 0; bits &= bits - 1) n++;
    }
    return n;
  }

  markStart(address: number, on: boolean): void {
    const g = (address - this.base) / ALIGNMENT;
    if (on) this.starts[g >>> 3]! |= 1 << (g & 7);
    else this.starts[g >>> 3]! &= ~(1 << (g & 7));
  }
}

/** The classic preset. Made by `new Heap({ preset: 'classic' })`. */
export class ClassicHeap extends Heap implements HeapOperations, FreeList {
  private readonly search: FitSearch;
  /** Regions in the order they were mapped (the order of the block list). */
  private readonly regions: Region[] = [];
  /** The same regions sorted by address, for lookups. */
  private readonly sorted: Region[] = [];
  private lastRegion: Region | null = null;
  private destroyed = false;

  private head = 0;
  private tail = 0;
  freeHead = 0;
  private freeTail = 0;

  private mapped = 0;
  private peakMapped = 0;
  private inUse = 0;
  private peakInUse = 0;
  private blockCount = 0;
  /** Blocks on the free list (read by the fit searches, to bound their walks). */
  freeCount = 0;
  private mmapCalls = 0;
  private munmapCalls = 0;

  constructor(options: ResolvedOptions) {
    super(options);
    this.search = FIT_SEARCH[options.algorithm];
  }

  // ---------------------------------------------------------------------------------------------
  // Native memory access. `regionOf` is the only way to an address's bytes.

  /** The region holding `address`, or null. */
  private findRegion(address: number): Region | null {
    const last = this.lastRegion;
    if (last !== null && last.contains(address)) return last;
    const sorted = this.sorted;
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = sorted[mid]!;
      if (address < r.base) hi = mid - 1;
      else if (address >= r.end) lo = mid + 1;
      else return (this.lastRegion = r);
    }
    return null;
  }

  /**
   * The region holding `length` bytes at `address`, which the heap's own metadata led to: when
   * there is none, a header or link was overwritten.
   */
  private regionOf(address: number, length = HEADER_SIZE): Region {
    const r = this.findRegion(address);
    if (r === null || address + length > r.end) {
      throw new HeapError('ERR_HEAP_CORRUPTED',
        `heap corrupted: a link points to ${hex(address)}, outside every region of this heap`, address);
    }
    return r;
  }

  private word(address: number): number {
    const r = this.regionOf(address, 8);
    const i = (address - r.base) >>> 2;
    return r.u32[i]! + r.u32[i + 1]! * TWO_32;
  }

  private setWord(address: number, value: number): void {
    const r = this.regionOf(address, 8);
    const i = (address - r.base) >>> 2;
    r.u32[i] = value >>> 0;
    r.u32[i + 1] = Math.floor(value / TWO_32);
  }

  // Header fields as they are in memory: untrusted.
  private rawSize(b: number): number { const raw = this.word(b + OFF_SIZE); return raw - (raw % 2); }
  private rawNext(b: number): number { return this.word(b + OFF_NEXT); }
  private rawPrev(b: number): number { return this.word(b + OFF_PREV); }
  private rawNextFree(b: number): number { return this.word(b + OFF_NEXT_FREE); }
  private rawPrevFree(b: number): number { return this.word(b + OFF_PREV_FREE); }
  private regionField(b: number): number { return this.word(b + OFF_REGION); }
  private isFree(b: number): boolean { return this.word(b + OFF_SIZE) % 2 === FREE_BIT; }
  private setSize(b: number, size: number, free: boolean): void { this.setWord(b + OFF_SIZE, free ? size + FREE_BIT : size); }
  private setNext(b: number, n: number): void { this.setWord(b + OFF_NEXT, n); }
  private setPrev(b: number, p: number): void { this.setWord(b + OFF_PREV, p); }

  // Header fields proved. Each takes a block the heap already holds for one (a recorded start).

  /** Whether `a` is a recorded block start in some region. */
  private isBlock(a: number): boolean {
    const r = this.findRegion(a);
    return r !== null && r.isStart(a);
  }

  /** The size of block `b`: a multiple of 16, at least MIN_BLOCK, ending at the next recorded start or the region's end. */
  blockSize(b: number): number {
    const r = this.regionOf(b);
    const size = this.rawSize(b);
    const end = b + size;
    if (size < MIN_BLOCK || size % ALIGNMENT !== 0 || end > r.end || (end < r.end && !r.isStart(end))) {
      throw corrupted(`its size ${size} does not end at a block of its region`, b);
    }
    return size;
  }

  /** The block after `b` in the block list: the next in its region, else the next region's first, else 0. */
  private next(b: number): number {
    const r = this.regionOf(b);
    const end = b + this.blockSize(b);
    const expected = end < r.end ? end : (this.regions[r.order + 1]?.base ?? 0);
    const n = this.rawNext(b);
    if (n !== expected) throw corrupted(`its next link ${hex(n)} is not the block after it (${hex(expected)})`, b);
    return n;
  }

  /** The block before `b` in the block list: a block that ends where `b` starts (in its region, or the region before), or 0. */
  private prev(b: number): number {
    const r = this.regionOf(b);
    const p = this.rawPrev(b);
    const before = b > r.base ? r : this.regions[r.order - 1];
    if (p === 0 ? before !== undefined : before === undefined || !before.isStart(p) || p + this.blockSize(p) !== (b > r.base ? b : before.end)) {
      throw corrupted(`its prev link ${hex(p)} is not the block before it`, b);
    }
    return p;
  }

  /** The free block after free block `b` on the free list, or 0 at its tail. */
  nextFree(b: number): number {
    const n = this.rawNextFree(b);
    if (n === 0 ? b !== this.freeTail : n === b || b === this.freeTail || !this.isBlock(n) || !this.isFree(n) || this.rawPrevFree(n) !== b) {
      throw corrupted(`its next-free link ${hex(n)} is not a free block that links back (was it written after free?)`, b);
    }
    return n;
  }

  /** The free block before free block `b` on the free list, or 0 at its head. */
  private prevFree(b: number): number {
    const p = this.rawPrevFree(b);
    if (p === 0 ? b !== this.freeHead : p === b || b === this.freeHead || !this.isBlock(p) || !this.isFree(p) || this.rawNextFree(p) !== b) {
      throw corrupted(`its prev-free link ${hex(p)} is not a free block that links back (was it written after free?)`, b);
    }
    return p;
  }

  /**
   * Proves what merging free block `b` into its left neighbour follows: its size, both free-list
   * links, and its block-list link to the block after it (its link back is rewritten by the merge).
   */
  private proveFreeLinks(b: number): void {
    this.blockSize(b);
    this.nextFree(b);
    this.prevFree(b);
    this.next(b);
  }

  /** A walk of the free list went past the count: its links make a cycle. */
  freeListOverrun(b: number): never {
    throw corrupted('the free list is longer than the free count (a cycle?)', b);
  }

  private nameOf(b: number): string {
    const r = this.regionOf(b);
    const start = b - r.base + OFF_NAME;
    let end = start;
    while (end < start + NAME_BYTES && r.u8[end] !== 0) end++;
    return utf8Decoder.decode(r.u8.subarray(start, end));
  }

  private setName(b: number, name: string | undefined): void {
    const r = this.regionOf(b);
    const start = b - r.base + OFF_NAME;
    const field = r.u8.subarray(start, start + NAME_BYTES);
    // encodeInto writes whole characters only; the last byte stays NUL.
    const written = name ? utf8Encoder.encodeInto(name, field.subarray(0, NAME_BYTES - 1)).written : 0;
    field.fill(0, written);
  }

  private fill(address: number, byte: number, length: number): void {
    const r = this.regionOf(address, length);
    const offset = address - r.base;
    r.u8.fill(byte, offset, offset + length);
  }

  /** Whether blocks `a` and `b` lie in one region (by the regions the heap keeps, not the headers). */
  private sameRegion(a: number, b: number): boolean {
    const r = this.findRegion(a);
    return r !== null && r.contains(b);
  }

  // ---------------------------------------------------------------------------------------------
  // Lists.

  private appendFree(b: number): void {
    this.setWord(b + OFF_NEXT_FREE, 0);
    this.setWord(b + OFF_PREV_FREE, this.freeTail);
    if (this.freeTail === 0) this.freeHead = b;
    else this.setWord(this.freeTail + OFF_NEXT_FREE, b);
    this.freeTail = b;
    this.freeCount++;
  }

  private removeFree(b: number): void {
    if (!this.isFree(b)) throw corrupted('a block taken off the free list is not free', b);
    const n = this.nextFree(b);
    const p = this.prevFree(b);
    if (p === 0) this.freeHead = n;
    else this.setWord(p + OFF_NEXT_FREE, n);
    if (n === 0) this.freeTail = p;
    else this.setWord(n + OFF_PREV_FREE, p);
    this.freeCount--;
  }

  /** Links `b` into the block list at its tail (the first block of a new region). */
  private linkAtTail(b: number): void {
    this.setPrev(b, this.tail);
    this.setNext(b, 0);
    if (this.tail === 0) this.head = b;
    else this.setNext(this.tail, b);
    this.tail = b;
    this.blockCount++;
  }

  /** Links `b` into the block list between `left` and `n`, which was left's next (proved by the caller). */
  private linkBetween(left: number, b: number, n: number): void {
    this.setPrev(b, left);
    this.setNext(b, n);
    this.setNext(left, b);
    if (n === 0) this.tail = b;
    else this.setPrev(n, b);
    this.blockCount++;
  }

  private unlink(b: number): void {
    const n = this.next(b);
    const p = this.prev(b);
    if (p === 0) this.head = n;
    else this.setNext(p, n);
    if (n === 0) this.tail = p;
    else this.setPrev(n, p);
    this.blockCount--;
  }

  /** Writes a fresh header at `b`. */
  private writeHeader(region: Region, b: number, size: number, free: boolean): void {
    this.setWord(b + OFF_REGION, region.base);
    this.setSize(b, size, free);
    this.setName(b, undefined);
    region.markStart(b, true);
  }

  // ---------------------------------------------------------------------------------------------
  // Regions.

  /** Maps a region for a block of `need` bytes; its one block goes on the free list. */
  private mapRegion(need: number): number {
    if (this.destroyed) throw destroyedError();
    const size = alignPage(need);
    if (size > MAX_VIEW_BYTES || this.mapped + size > this.limit) return 0;
    const mapping = mapMemory(size);
    this.mmapCalls++;
    if (mapping === null) return 0;
    const region = new Region(mapping);
    region.order = this.regions.length;
    this.regions.push(region);
    const at = this.sorted.findIndex((r) => r.base > region.base);
    this.sorted.splice(at === -1 ? this.sorted.length : at, 0, region);
    this.mapped += size;
    if (this.mapped > this.peakMapped) this.peakMapped = this.mapped;

    const b = region.base;
    this.writeHeader(region, b, size, true);
    this.linkAtTail(b);
    this.appendFree(b);
    return b;
  }

  /** Gives back the region that `b`, a free block, now covers entirely. */
  private unmapRegion(b: number): void {
    const region = this.regionOf(b);
    this.removeFree(b);
    this.unlink(b);
    this.regions.splice(region.order, 1);
    for (let i = region.order; i < this.regions.length; i++) this.regions[i]!.order = i;
    this.sorted.splice(this.sorted.indexOf(region), 1);
    if (this.lastRegion === region) this.lastRegion = null;
    unmapMemory(region.mapping);
    this.munmapCalls++;
    this.mapped -= region.size;
  }

  // ---------------------------------------------------------------------------------------------
  // Blocks.

  /** Merges free `right` into its left neighbour `left`, which keeps its header and state. */
  private absorb(left: number, right: number): void {
    const size = this.blockSize(left) + this.blockSize(right);
    // Every link the unlinking follows is proved before the first write.
    this.proveFreeLinks(right);
    this.next(right);
    this.prev(right);
    this.removeFree(right);
    this.unlink(right);
    this.setSize(left, size, this.isFree(left));
    this.regionOf(right).markStart(right, false);
  }

  /** Cuts used block `b` down to `need` bytes when the rest makes a block, and frees the rest. */
  private splitTail(b: number, need: number): void {
    const size = this.blockSize(b);
    const rest = size - need;
    if (rest < MIN_BLOCK) return;
    const n = this.next(b);
    this.proveSplit(b, size, need, n);
    const r = b + need;
    this.setSize(b, need, false);
    this.writeHeader(this.regionOf(b), r, rest, false);
    this.linkBetween(b, r, n);
    this.release(r);
  }

  /**
   * Proves what cutting block `b`, of `size` bytes, down to `need` will follow, where `after` is the
   * block after it: that block's free-list links, when the rest will merge with it.
   */
  private proveSplit(b: number, size: number, need: number, after: number): void {
    if (size - need >= MIN_BLOCK && after !== 0 && this.sameRegion(b, after) && this.isFree(after)) this.proveFreeLinks(after);
  }

  /** free() once `b` is known to be a used block. */
  private release(b: number): void {
    let size = this.blockSize(b);
    // Every link this free will follow is proved before the first write.
    const n = this.next(b);
    const p = this.prev(b);
    const mergeNext = n !== 0 && this.sameRegion(b, n) && this.isFree(n);
    const mergePrev = p !== 0 && this.sameRegion(p, b) && this.isFree(p);
    if (mergeNext) this.proveFreeLinks(n);
    if (mergePrev) this.proveFreeLinks(p);
    this.inUse -= size;
    this.setSize(b, size, true);
    this.appendFree(b);
    if (mergeNext) this.absorb(b, n);
    if (mergePrev) {
      this.absorb(p, b);
      b = p;
    }
    size = this.blockSize(b);
    if (size === this.regionOf(b).size) this.unmapRegion(b);
  }

  /** Takes free block `b` off the free list for a request needing `need` bytes. */
  private take(b: number, need: number, name: string | undefined): number {
    this.proveSplit(b, this.blockSize(b), need, this.next(b));
    this.removeFree(b);
    this.setSize(b, this.blockSize(b), false);
    this.inUse += this.blockSize(b);
    this.splitTail(b, need);
    this.setName(b, name);
    if (this.inUse > this.peakInUse) this.peakInUse = this.inUse;
    if (this.scribble) this.fill(b + HEADER_SIZE, SCRIBBLE_BYTE, this.blockSize(b) - HEADER_SIZE);
    return b + HEADER_SIZE;
  }

  /** The header of the live block whose data starts at `ptr`, after every check we can make. */
  private liveBlock(ptr: number, op: string): number {
    if (this.destroyed) throw destroyedError();
    const b = ptr - HEADER_SIZE;
    const r = this.findRegion(b);
    if (r === null || !r.isStart(b)) {
      throw new HeapError('ERR_INVALID_POINTER',
        `${op}(${hex(ptr)}): not an address this heap returned (expected the start of a live block's data)`, ptr);
    }
    const raw = this.word(b + OFF_SIZE);
    const size = raw - (raw % 2);
    const end = b + size;
    if (this.regionField(b) !== r.base || size < MIN_BLOCK || size % ALIGNMENT !== 0 ||
        end > r.end || (end < r.end && !r.isStart(end))) {
      throw new HeapError('ERR_HEAP_CORRUPTED',
        `${op}(${hex(ptr)}): the block's header is damaged (size field ${raw}, region field ${hex(this.regionField(b))})`, ptr);
    }
    if (raw % 2 === FREE_BIT) {
      throw new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(ptr)}): the block is already free`, ptr);
    }
    return b;
  }

  // ---------------------------------------------------------------------------------------------
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

  override free(ptr: number): void {
    checkAddress('free', ptr);
    if (this.destroyed) throw destroyedError();
    if (ptr === 0) return;
    const b = this.liveBlock(ptr, 'free');
    this.release(b);
    this.owners?.forget(ptr);
  }

  override realloc(ptr: number, size: number, name?: string): number {
    checkRealloc(ptr, size, name);
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
    to.u8.set(from.u8.subarray(src, src + Math.min(current - HEADER_SIZE, size)), dst);
    this.owners?.moved(ptr, moved);
    this.release(b);
    return moved;
  }

  override usableSize(ptr: number): number {
    checkAddress('usableSize', ptr);
    return this.blockSize(this.liveBlock(ptr, 'usableSize')) - HEADER_SIZE;
  }

  override bytes(ptr: number, length?: number): Uint8Array {
    checkAddress('bytes', ptr);
    if (length !== undefined) checkSize('bytes', 'length', length);
    const b = this.liveBlock(ptr, 'bytes');
    const usable = this.blockSize(b) - HEADER_SIZE;
    const n = length ?? usable;
    if (n > usable) {
      throw new RangeError(`bytes(${hex(ptr)}, ${n}): the block has only ${usable} usable bytes`);
    }
    const r = this.regionOf(b);
    const offset = ptr - r.base;
    return r.u8.subarray(offset, offset + n);
  }

  // ---------------------------------------------------------------------------------------------
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
    for (let b = this.freeHead; b !== 0; b = this.nextFree(b)) {
      if (freeList.length >= this.freeCount) throw corrupted('the free list is longer than the free count (a cycle?)', b);
      freeList.push(b);
    }
    return { regions, freeList };
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
    this.lastRegion = null;
    this.head = this.tail = this.freeHead = this.freeTail = 0;
    this.mapped = this.inUse = this.blockCount = this.freeCount = 0;
    this.destroyed = true;
  }
}

function corrupted(what: string, address: number): HeapError {
  return new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted at ${hex(address)}: ${what}`, address);
}
