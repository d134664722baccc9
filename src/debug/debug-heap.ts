// The debug mode (`debug: true`, ALLOCATOR_DEBUG=1): a heap of either preset wrapped in checks
// that cost speed and catch misuse the presets cannot see. Being a separate class, it costs the
// default heaps nothing.
//
// - Canaries: every block carries 16 bytes of pattern before the caller's bytes (guarding the
//   preset's header against underflows) and 16 after (catching overflows). They are checked when
//   the block is freed or reallocated, and by check().
// - Freed blocks are filled with 0xDD and held in a quarantine (up to QUARANTINE_BLOCKS blocks or
//   QUARANTINE_BYTES bytes) before the preset may reuse them; on the way out, the fill is checked,
//   so a write through a stale pointer is reported rather than left to corrupt a new block. A
//   block larger than QUARANTINE_BYTES goes straight back to the preset, unfilled.
// - On every free the canaries of the block's neighbours in address order are checked too.
// - realloc always moves, so the old block goes through the quarantine like any other.
// - usableSize and bytes() give exactly the bytes asked for: anything past them is canary.

import { HeapError, destroyedError, hex } from '../heap/errors.js';
import { Heap, type HeapOperations } from '../heap/heap.js';
import { callocBytes, checkName, checkRealloc, checkSize, toAddress } from '../heap/arguments.js';
import type { ResolvedOptions } from '../heap/options.js';
import type { Address, HeapSnapshot, HeapStats } from '../heap/types.js';

const CANARY = 16;
const CANARY_BYTE = 0xc5;
const FREED_BYTE = 0xdd;
const QUARANTINE_BLOCKS = 256;
const QUARANTINE_BYTES = 8 * 1024 * 1024;
/** The largest request whose block, canaries included, is still a safe integer. */
const MAX_REQUEST = Number.MAX_SAFE_INTEGER - 2 * CANARY;

interface Block {
  /** The caller's address. */
  readonly ptr: number;
  readonly size: number;
}

function corrupted(what: string, address: number): HeapError {
  return new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted at ${hex(address)}: ${what}`, address);
}

/**
 * The debug heap, made by `new Heap({ debug: true })` (or ALLOCATOR_DEBUG=1): a preset's heap
 * wrapped with canaries around every block and a quarantine of freed blocks, checked on every call.
 */
export class DebugHeap extends Heap implements HeapOperations {
  private readonly inner: Heap;
  /** Live blocks by the caller's address. */
  private readonly live = new Map<number, Block>();
  /** The same addresses, sorted, to find a block's neighbours. */
  private readonly order: number[] = [];
  private readonly quarantine: Block[] = [];
  private quarantined = 0;
  private destroyed = false;

  constructor(options: ResolvedOptions, inner: Heap) {
    super(options);
    this.inner = inner;
  }

  private fill(at: number, length: number, byte: number): void {
    if (length > 0) this.inner.bytes(at - CANARY, CANARY + length + CANARY).fill(byte, CANARY, CANARY + length);
  }

  /** The whole span of a block as the preset sees it: canary, bytes, canary. */
  private region(block: Block): Uint8Array {
    return this.inner.bytes(block.ptr - CANARY, CANARY + block.size + CANARY);
  }

  private checkCanaries(block: Block): void {
    const span = this.region(block);
    for (let i = 0; i < CANARY; i++) {
      if (span[i] !== CANARY_BYTE) throw corrupted(`the ${CANARY} bytes before the block were overwritten (an underflow?)`, block.ptr);
      if (span[CANARY + block.size + i] !== CANARY_BYTE) {
        throw corrupted(`the bytes after the block's ${block.size} were overwritten (an overflow?)`, block.ptr + block.size + i);
      }
    }
  }

  private checkFreed(block: Block): void {
    const span = this.region(block);
    for (let i = CANARY; i < CANARY + block.size; i++) {
      if (span[i] !== FREED_BYTE) throw corrupted('a freed block was written after free', block.ptr + i - CANARY);
    }
  }

  private insertOrder(ptr: number): void {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order[mid]! < ptr) lo = mid + 1;
      else hi = mid;
    }
    this.order.splice(lo, 0, ptr);
  }

  private indexOf(ptr: number): number {
    let lo = 0;
    let hi = this.order.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.order[mid]!;
      if (v === ptr) return mid;
      if (v < ptr) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private known(ptr: number, op: string): Block {
    const block = this.live.get(ptr);
    if (block !== undefined) return block;
    if (this.quarantine.some((q) => q.ptr === ptr) || this.freedInside(ptr)) {
      throw new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(ptr)}): the block is already free`, ptr);
    }
    throw new HeapError('ERR_INVALID_POINTER',
      `${op}(${hex(ptr)}): not an address this heap returned (expected the start of a live block's data)`, ptr);
  }

  /** Whether the preset underneath calls `ptr`'s block (out of quarantine now) already free. */
  private freedInside(ptr: number): boolean {
    try {
      this.inner.usableSize(ptr - CANARY);
    } catch (error) {
      return error instanceof HeapError && error.code === 'ERR_DOUBLE_FREE';
    }
    return false;
  }

  /** Every call after destroy() throws ERR_HEAP_DESTROYED, before it looks at its arguments. */
  protected override assertLive(): void {
    if (this.destroyed) throw destroyedError();
  }

  override malloc(size: number, name?: string): number {
    this.assertLive();
    checkSize('malloc', 'size', size);
    checkName('malloc', name);
    if (size > MAX_REQUEST) return this.outOfMemory('malloc', size);
    const inner = this.inner.malloc(size + 2 * CANARY, name);
    if (inner === 0) return this.outOfMemory('malloc', size);
    const block = { ptr: inner + CANARY, size };
    const span = this.region(block);
    span.fill(CANARY_BYTE, 0, CANARY);
    span.fill(CANARY_BYTE, CANARY + size);
    this.live.set(block.ptr, block);
    this.insertOrder(block.ptr);
    return block.ptr;
  }

  override calloc(count: number, size: number, name?: string): number {
    this.assertLive();
    const total = callocBytes(count, size);
    if (total < 0) return this.outOfMemory('calloc', `${count} × ${size}`);
    const ptr = this.malloc(total, name);
    if (ptr !== 0) this.fill(ptr, total, 0);
    return ptr;
  }

  override realloc(ptr: Address, size: number, name?: string): number {
    this.assertLive();
    ptr = checkRealloc(ptr, size, name);
    if (ptr === 0) return this.malloc(size, name);
    const block = this.known(ptr, 'realloc');
    this.checkCanaries(block);
    if (size === 0) {
      this.free(ptr);
      return 0;
    }
    const moved = this.malloc(size, name ?? this.nameOf(ptr));
    if (moved === 0) return 0;
    const keep = Math.min(block.size, size);
    this.region(this.live.get(moved)!).set(this.region(block).subarray(CANARY, CANARY + keep), CANARY);
    this.owners?.moved(ptr, moved);
    this.free(ptr);
    return moved;
  }

  private nameOf(ptr: number): string | undefined {
    const address = ptr - CANARY;
    for (const region of this.inner.snapshot().regions) {
      for (const b of region.blocks) if (!b.free && b.address <= address && address < b.address + b.size) return b.name || undefined;
    }
    return undefined;
  }

  override free(ptr: Address): void {
    this.assertLive();
    ptr = toAddress('free', ptr);
    if (ptr === 0) return;
    const block = this.known(ptr, 'free');
    this.checkCanaries(block);
    this.owners?.forget(ptr);
    const at = this.indexOf(ptr);
    for (const neighbour of [this.order[at - 1], this.order[at + 1]]) {
      if (neighbour !== undefined) this.checkCanaries(this.live.get(neighbour)!);
    }
    this.live.delete(ptr);
    this.order.splice(at, 1);
    if (block.size > QUARANTINE_BYTES) {
      // Larger than the whole quarantine: it would leave at once, so it is neither filled nor held.
      this.inner.free(ptr - CANARY);
      return;
    }
    this.fill(ptr, block.size, FREED_BYTE);
    this.quarantine.push(block);
    this.quarantined += block.size;
    while (this.quarantine.length > QUARANTINE_BLOCKS || this.quarantined > QUARANTINE_BYTES) this.release();
  }

  /** The oldest quarantined block goes back to the preset, once its fill is proved untouched. */
  private release(): void {
    const block = this.quarantine.shift()!;
    this.quarantined -= block.size;
    this.checkFreed(block);
    this.inner.free(block.ptr - CANARY);
  }

  /** @internal See HeapOperations. */
  override blockAt(ptr: number, op: string): number {
    this.assertLive();
    // The live block with the greatest start at or below `ptr` (order is sorted), if its data holds it.
    let lo = 0;
    let hi = this.order.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order[mid]! <= ptr) lo = mid + 1;
      else hi = mid - 1;
    }
    const start = hi >= 0 ? this.order[hi]! : -1;
    // A block of 0 bytes still has its start.
    const size = start >= 0 ? this.live.get(start)!.size : 0;
    if (start >= 0 && (ptr === start || ptr < start + size)) {
      this.foundEnd = start + size;
      return start;
    }
    if (this.quarantine.some((q) => q.ptr === ptr) || this.freedInside(ptr)) {
      throw new HeapError('ERR_DOUBLE_FREE', `${op}(${hex(ptr)}): the block is already free`, ptr);
    }
    throw new HeapError('ERR_INVALID_POINTER', `${op}(${hex(ptr)}): not inside a live block of this heap`, ptr);
  }

  /** @internal See HeapOperations. */
  override rawBytes(start: number, ptr: number, n: number): Uint8Array {
    const from = CANARY + ptr - start;
    return this.region(this.live.get(start)!).subarray(from, from + n);
  }

  override usableSize(ptr: Address): number {
    this.assertLive();
    ptr = toAddress('usableSize', ptr);
    return this.known(ptr, 'usableSize').size;
  }

  override stats(): HeapStats {
    this.assertLive();
    return this.inner.stats();
  }

  /** The preset's snapshot, with quarantined blocks shown as what they are to the caller: free. */
  override snapshot(): HeapSnapshot {
    this.assertLive();
    const snapshot = this.inner.snapshot();
    if (this.quarantine.length === 0) return snapshot;
    const held = this.quarantine.map((q) => q.ptr - CANARY).sort((a, b) => a - b);
    const quarantined = (address: number, size: number): boolean => {
      let lo = 0;
      let hi = held.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        // The first held address at or past the block's start (a headerless block starts at its data).
        if (held[mid]! < address) lo = mid + 1;
        else hi = mid;
      }
      return lo < held.length && held[lo]! < address + size;
    };
    return {
      freeList: snapshot.freeList,
      regions: snapshot.regions.map((region) => ({
        ...region,
        blocks: region.blocks.map((b) => (!b.free && quarantined(b.address, b.size) ? { ...b, free: true, name: '' } : b)),
      })),
    };
  }

  /** The preset's invariants, every live block's canaries, and every quarantined block's fill. */
  override check(): void {
    this.assertLive();
    this.inner.check();
    for (const block of this.live.values()) this.checkCanaries(block);
    for (const block of this.quarantine) this.checkFreed(block);
  }

  /** Empties the quarantine (checking each block), then trims the preset. */
  override trim(): void {
    this.assertLive();
    while (this.quarantine.length > 0) this.release();
    this.inner.trim();
  }

  /** Unmaps everything; a second destroy() does nothing, every other later call throws. */
  override destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.owners?.clear();
    this.live.clear();
    this.order.length = 0;
    this.quarantine.length = 0;
    this.quarantined = 0;
    this.inner.destroy();
  }
}
