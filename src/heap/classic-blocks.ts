// The classic preset's block layer: its regions, the native memory it reads only through them,
// the header fields (raw, and proved), the block list and the free list, and the block operations
// (split, merge, take, release) the public calls in ./classic.ts are made of.
//
// The classic engine is the course allocator, rule for rule (see src/layout/classic.ts and the
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

import { ReleasedRanges } from './released.js';
import { alignPage, mapMemory, unmapMemory, MAX_VIEW_BYTES, type Mapping } from '../os/memory.js';
import {
  ALIGNMENT, FREE_BIT, HEADER_SIZE, MIN_BLOCK, NAME_BYTES,
  OFF_NAME, OFF_NEXT, OFF_NEXT_FREE, OFF_PREV, OFF_PREV_FREE, OFF_REGION, OFF_SIZE,
} from '../layout/classic.js';
import { FIT_SEARCH, type FitSearch, type FreeList } from '../strategies/fit.js';
import { HeapError, destroyedError, hex } from './errors.js';
import { Heap, type HeapOperations } from './heap.js';
import type { ResolvedOptions } from './options.js';

const TWO_32 = 2 ** 32;
export const SCRIBBLE_BYTE = 0xaa;
/** What scribble fills a freed block's data with, past its free-list links. */
export const FREED_BYTE = 0xdd;
/** How many freed blocks' headers a region remembers for the double-free rule (Region.recentFrees). */
const RECENT_FREES = 64;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** One mapping, its views, and a bitmap of where blocks start (kept in JS, out of users' reach). */
export class Region {
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
  /**
   * The headers of the last RECENT_FREES blocks freed here: when the region is given back, a
   * second free of one of them is known for a double free.
   */
  readonly recentFrees: number[] = [];

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

  /** The last recorded block start at or before `address` (inside the region), or -1. */
  startAtOrBefore(address: number): number {
    let g = Math.floor((address - this.base) / ALIGNMENT);
    if (g < 0) return -1;
    for (; g >= 0; g--) {
      const byte = this.starts[g >>> 3]!;
      if (byte === 0) {
        g &= ~7; // the rest of this byte is clear too
        continue;
      }
      if ((byte & (1 << (g & 7))) !== 0) return this.base + g * ALIGNMENT;
    }
    return -1;
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
/** The classic preset's state and block operations; ClassicHeap (./classic.ts) adds the public calls. */
export abstract class ClassicBlocks extends Heap implements HeapOperations, FreeList {
  protected readonly search: FitSearch;
  /** Regions in the order they were mapped (the order of the block list). */
  protected readonly regions: Region[] = [];
  /** The same regions sorted by address, for lookups. */
  protected readonly sorted: Region[] = [];
  /** Headers of blocks freed in regions given back to the kernel: a second free of one is a double free. */
  protected readonly released = new ReleasedRanges();
  protected lastRegion: Region | null = null;
  protected destroyed = false;

  protected head = 0;
  protected tail = 0;
  freeHead = 0;
  protected freeTail = 0;
  /**
   * Null, or (once the viewer asked, viewFreeLog) every change of the free list in order: a block
   * appended at its tail as its address, a block taken off as minus its address. Every change goes
   * through appendFree and removeFree.
   */
  protected freeLog: number[] | null = null;

  protected mapped = 0;
  protected peakMapped = 0;
  protected inUse = 0;
  protected peakInUse = 0;
  protected blockCount = 0;
  /** Blocks on the free list (read by the fit searches, to bound their walks). */
  freeCount = 0;
  protected mmapCalls = 0;
  protected munmapCalls = 0;

  constructor(options: ResolvedOptions) {
    super(options);
    this.search = FIT_SEARCH[options.algorithm];
  }

  // Native memory access. `regionOf` is the only way to an address's bytes.

  /** The region holding `address`, or null. */
  protected findRegion(address: number): Region | null {
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
  protected regionOf(address: number, length = HEADER_SIZE): Region {
    const r = this.findRegion(address);
    if (r === null || address + length > r.end) {
      throw new HeapError('ERR_HEAP_CORRUPTED',
        `heap corrupted: a link points to ${hex(address)}, outside every region of this heap`, address);
    }
    return r;
  }

  protected word(address: number): number {
    const r = this.regionOf(address, 8);
    const i = (address - r.base) >>> 2;
    return r.u32[i]! + r.u32[i + 1]! * TWO_32;
  }

  protected setWord(address: number, value: number): void {
    const r = this.regionOf(address, 8);
    const i = (address - r.base) >>> 2;
    r.u32[i] = value >>> 0;
    r.u32[i + 1] = Math.floor(value / TWO_32);
  }

  // Header fields as they are in memory: untrusted.
  protected rawSize(b: number): number { const raw = this.word(b + OFF_SIZE); return raw - (raw % 2); }

  protected rawNext(b: number): number { return this.word(b + OFF_NEXT); }

  protected rawPrev(b: number): number { return this.word(b + OFF_PREV); }

  protected rawNextFree(b: number): number { return this.word(b + OFF_NEXT_FREE); }

  protected rawPrevFree(b: number): number { return this.word(b + OFF_PREV_FREE); }

  protected regionField(b: number): number { return this.word(b + OFF_REGION); }

  protected isFree(b: number): boolean { return this.word(b + OFF_SIZE) % 2 === FREE_BIT; }

  protected setSize(b: number, size: number, free: boolean): void { this.setWord(b + OFF_SIZE, free ? size + FREE_BIT : size); }

  protected setNext(b: number, n: number): void { this.setWord(b + OFF_NEXT, n); }

  protected setPrev(b: number, p: number): void { this.setWord(b + OFF_PREV, p); }

  // Header fields proved. Each takes a block the heap already holds for one (a recorded start).

  /** Whether `a` is a recorded block start in some region. */
  protected isBlock(a: number): boolean {
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
  protected next(b: number): number {
    const r = this.regionOf(b);
    const end = b + this.blockSize(b);
    const expected = end < r.end ? end : (this.regions[r.order + 1]?.base ?? 0);
    const n = this.rawNext(b);
    if (n !== expected) throw corrupted(`its next link ${hex(n)} is not the block after it (${hex(expected)})`, b);
    return n;
  }

  /** The block before `b` in the block list: a block that ends where `b` starts (in its region, or the region before), or 0. */
  protected prev(b: number): number {
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
  protected prevFree(b: number): number {
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
  protected proveFreeLinks(b: number): void {
    this.blockSize(b);
    this.nextFree(b);
    this.prevFree(b);
    this.next(b);
  }

  /** A walk of the free list went past the count: its links make a cycle. */
  freeListOverrun(b: number): never {
    throw corrupted('the free list is longer than the free count (a cycle?)', b);
  }

  protected nameOf(b: number): string {
    const r = this.regionOf(b);
    const start = b - r.base + OFF_NAME;
    let end = start;
    while (end < start + NAME_BYTES && r.u8[end] !== 0) end++;
    return utf8Decoder.decode(r.u8.subarray(start, end));
  }

  protected setName(b: number, name: string | undefined): void {
    const r = this.regionOf(b);
    const start = b - r.base + OFF_NAME;
    const field = r.u8.subarray(start, start + NAME_BYTES);
    // encodeInto writes whole characters only; the last byte stays NUL.
    const written = name ? utf8Encoder.encodeInto(name, field.subarray(0, NAME_BYTES - 1)).written : 0;
    field.fill(0, written);
  }

  protected fill(address: number, byte: number, length: number): void {
    const r = this.regionOf(address, length);
    const offset = address - r.base;
    r.u8.fill(byte, offset, offset + length);
  }

  /** Whether blocks `a` and `b` lie in one region (by the regions the heap keeps, not the headers). */
  protected sameRegion(a: number, b: number): boolean {
    const r = this.findRegion(a);
    return r !== null && r.contains(b);
  }

  // Lists.

  protected appendFree(b: number): void {
    if (this.freeLog !== null) this.freeLog.push(b);
    this.setWord(b + OFF_NEXT_FREE, 0);
    this.setWord(b + OFF_PREV_FREE, this.freeTail);
    if (this.freeTail === 0) this.freeHead = b;
    else this.setWord(this.freeTail + OFF_NEXT_FREE, b);
    this.freeTail = b;
    this.freeCount++;
  }

  protected removeFree(b: number): void {
    if (!this.isFree(b)) throw corrupted('a block taken off the free list is not free', b);
    const n = this.nextFree(b);
    const p = this.prevFree(b);
    if (p === 0) this.freeHead = n;
    else this.setWord(p + OFF_NEXT_FREE, n);
    if (n === 0) this.freeTail = p;
    else this.setWord(n + OFF_PREV_FREE, p);
    this.freeCount--;
    if (this.freeLog !== null) this.freeLog.push(-b);
  }

  /** Links `b` into the block list at its tail (the first block of a new region). */
  protected linkAtTail(b: number): void {
    this.setPrev(b, this.tail);
    this.setNext(b, 0);
    if (this.tail === 0) this.head = b;
    else this.setNext(this.tail, b);
    this.tail = b;
    this.blockCount++;
  }

  /** Links `b` into the block list between `left` and `n`, which was left's next (proved by the caller). */
  protected linkBetween(left: number, b: number, n: number): void {
    this.setPrev(b, left);
    this.setNext(b, n);
    this.setNext(left, b);
    if (n === 0) this.tail = b;
    else this.setPrev(n, b);
    this.blockCount++;
  }

  protected unlink(b: number): void {
    const n = this.next(b);
    const p = this.prev(b);
    if (p === 0) this.head = n;
    else this.setNext(p, n);
    if (n === 0) this.tail = p;
    else this.setPrev(n, p);
    this.blockCount--;
  }

  /** Writes a fresh header at `b`. */
  protected writeHeader(region: Region, b: number, size: number, free: boolean): void {
    this.setWord(b + OFF_REGION, region.base);
    this.setSize(b, size, free);
    this.setName(b, undefined);
    region.markStart(b, true);
  }

  // Regions.

  /** Maps a region for a block of `need` bytes; its one block goes on the free list. */
  protected mapRegion(need: number): number {
    if (this.destroyed) throw destroyedError();
    const size = alignPage(need);
    if (size > MAX_VIEW_BYTES || this.mapped + size > this.limit) return 0;
    const mapping = mapMemory(size);
    this.mmapCalls++;
    if (mapping === null) return 0;
    this.released.forget(mapping.address, mapping.address + size);
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
  protected unmapRegion(b: number): void {
    const region = this.regionOf(b);
    this.removeFree(b);
    this.unlink(b);
    this.regions.splice(region.order, 1);
    for (let i = region.order; i < this.regions.length; i++) this.regions[i]!.order = i;
    this.sorted.splice(this.sorted.indexOf(region), 1);
    if (this.lastRegion === region) this.lastRegion = null;
    unmapMemory(region.mapping);
    // Exactly the blocks freed there last: the region's other addresses may never have been starts.
    for (const freed of region.recentFrees) this.released.add(freed, freed + 1);
    this.munmapCalls++;
    this.mapped -= region.size;
  }

  // Blocks.

  /** Merges free `right` into its left neighbour `left`, which keeps its header and state. */
  protected absorb(left: number, right: number): void {
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
  protected splitTail(b: number, need: number): void {
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
  protected proveSplit(b: number, size: number, need: number, after: number): void {
    if (size - need >= MIN_BLOCK && after !== 0 && this.sameRegion(b, after) && this.isFree(after)) this.proveFreeLinks(after);
  }

  /** free() once `b` is known to be a used block. */
  protected release(b: number): void {
    let size = this.blockSize(b);
    // Every link this free will follow is proved before the first write.
    const n = this.next(b);
    const p = this.prev(b);
    const mergeNext = n !== 0 && this.sameRegion(b, n) && this.isFree(n);
    const mergePrev = p !== 0 && this.sameRegion(p, b) && this.isFree(p);
    if (mergeNext) this.proveFreeLinks(n);
    if (mergePrev) this.proveFreeLinks(p);
    this.inUse -= size;
    const recent = this.regionOf(b).recentFrees;
    if (recent.push(b) > RECENT_FREES) recent.shift();
    // Scribbled: the data past the free-list links the block is about to hold (MIN_BLOCK ends them).
    if (this.scribble && size > MIN_BLOCK) this.fill(b + MIN_BLOCK, FREED_BYTE, size - MIN_BLOCK);
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
  protected take(b: number, need: number, name: string | undefined): number {
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
  /** The block whose data starts at `ptr`, proved live; errors name `op` and `shown` (the caller's address, `ptr` by default). */
  protected liveBlock(ptr: number, op: string, shown = ptr): number {
    if (this.destroyed) throw destroyedError();
    const b = ptr - HEADER_SIZE;
    const r = this.findRegion(b);
    if (r === null && this.released.holds(b)) {
      throw new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(shown)}): the block is already free (its region was given back to the kernel)`, shown);
    }
    if (r === null || !r.isStart(b)) {
      throw new HeapError('ERR_INVALID_POINTER',
        `${op}(${hex(shown)}): not an address this heap returned (expected the start of a live block's data)`, shown);
    }
    const raw = this.word(b + OFF_SIZE);
    const size = raw - (raw % 2);
    const end = b + size;
    if (this.regionField(b) !== r.base || size < MIN_BLOCK || size % ALIGNMENT !== 0 ||
        end > r.end || (end < r.end && !r.isStart(end))) {
      throw new HeapError('ERR_HEAP_CORRUPTED',
        `${op}(${hex(shown)}): the block's header is damaged (size field ${raw}, region field ${hex(this.regionField(b))})`, shown);
    }
    if (raw % 2 === FREE_BIT) {
      throw new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(shown)}): the block is already free`, shown);
    }
    return b;
  }
}

export function corrupted(what: string, address: number): HeapError {
  return new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted at ${hex(address)}: ${what}`, address);
}
