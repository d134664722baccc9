// The shared preset's large blocks: a request of LARGE_MIN bytes or more (or one no arena can
// hold) gets a mapping of its own, recorded in a table in the control block (ControlLayout.largeAt),
// so that any thread can find, read, free or resize any of them. The table is JavaScript memory,
// out of native code's reach; every call on it runs under the global lock.
//
// A freed block that no heap but the freeing one made a view of (bytes()) is unmapped, as the fast
// preset unmaps its large blocks (that heap's views detached where the runtime can); one that
// another heap viewed stays mapped, as read-only zero pages, while any heap is open (a thread can
// detach only the views it made, and a view over unmapped memory kills the process at its first
// read), so such a view reads zeros: a FREE range kept for a later block. So is the address space
// reserved after a new block, for realloc to grow it where it lies. The last close over a
// destroyed heap unmaps all.
//
// The table's entries, their layout and the operations on one entry are ./shared-large-entries.ts;
// this file holds the calls a heap makes, and the order of their writes.
//
// Invariants:
// - LIVE (or MOVING) and FREE entries never overlap, and each covers whole pages this process mapped.
// - Every change writes in an order where a thread stopped between two writes (worker.terminate()
//   lands at any instruction) leaves at worst a range that no entry holds: address space lost,
//   never two entries over one byte, and never a LIVE entry over memory not read-write but the
//   block being freed in that call. A cut (a free or a shrink) is recorded as an intent first,
//   and recover() finishes it when the global lock is taken over from a thread that died holding
//   it, then counts the table again.

import { hex } from './errors.js';
import { MAX_VIEW_BYTES, decommitRange, getPageSize, growInPlace, mapMemory, reserveRange, unmapRange, viewRange } from '../os/memory.js';
import { F, I } from './shared-control.js';
import { E, LargeEntries, State } from './shared-large-entries.js';

/** Requests of this many bytes or more get a mapping of their own (glibc's largest mmap threshold). */
export const LARGE_MIN = 32 * 1024 * 1024;
/** Views this thread keeps over large blocks before it drops those of blocks freed since. */
const VIEWS_KEPT = 64;

interface CachedView {
  serial: number;
  bytes: Uint8Array;
}

const canDetach = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

/** The table of large blocks, as one thread sees it (its views over the blocks are its own). */
export class LargeTable extends LargeEntries {
  private readonly views = new Map<number, CachedView>();

  /**
   * A block of `length` bytes (whole pages): a freed range that holds it (its head, or all of it
   * when what would be left is less than a page or no entry is free for the rest), else a new
   * mapping, with as much address space again reserved after it when `room`. 0 when there is no
   * entry for it or the kernel refuses.
   */
  allocate(length: number, room: boolean, most: number): number {
    const t = this.table;
    const top = this.top();
    let best = -1;
    for (let e = 0; e < top; e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] === State.FREE && t[at + E.SIZE]! >= length && (best < 0 || t[at + E.SIZE]! < t[best * E.FLOATS + E.SIZE]!)) best = e;
    }
    if (best >= 0) {
      const at = best * E.FLOATS;
      const from = t[at + E.ADDRESS]!;
      const range = t[at + E.SIZE]!;
      const keep = t[at + E.KEEP] === 1;
      const spare = range - length >= getPageSize() ? this.emptyEntry() : -1;
      if (spare < 0) {
        // All of it, when it is not more than twice the request nor past `most`: made read-write
        // while it is still FREE (harmless), then handed out.
        if (range > 2 * length || range > most || range > MAX_VIEW_BYTES || !this.commit(from, range)) return 0;
        this.becomeLive(best, from, range, keep);
        return from;
      }
      // Its head, so that what is left lies after the block, for it to grow into: read-write
      // first; then the range shrinks from its head (no longer a freed block's start), its size
      // first, so that it never reaches past its own end; then the block is recorded.
      if (!this.commit(from, length)) return 0;
      t[at + E.SERIAL] = 0;
      t[at + E.SIZE] = range - length;
      t[at + E.ADDRESS] = from + length;
      this.becomeLive(spare, from, length, keep);
      return from;
    }
    // A new range: with `room`, as much address space again is reserved after the block (it
    // costs no memory), a free range from the start, so that a realloc can grow the block where
    // it lies. When the kernel refuses, the free ranges that may go are given back first.
    const e = this.emptyEntry();
    if (e < 0) return 0;
    this.floats[F.MMAP_CALLS]!++;
    const reserved = room && length <= MAX_VIEW_BYTES / 2 ? reserveRange(2 * length) : 0;
    if (reserved === 0) {
      let mapping = mapMemory(length, false);
      if (mapping === null && this.unmapSpare() > 0) mapping = mapMemory(length, false);
      if (mapping === null) return 0;
      this.becomeLive(e, mapping.address, length, false);
      return mapping.address;
    }
    if (!this.commit(reserved, length)) {
      unmapRange(reserved, 2 * length);
      return 0;
    }
    this.becomeLive(e, reserved, length, false);
    const tail = this.emptyEntry();
    if (tail >= 0) this.record(tail, reserved + length, length, State.FREE, false, false);
    else unmapRange(reserved + length, length);
    return reserved;
  }

  /**
   * Frees the block of entry `e` (LIVE, or MOVING by this heap) for heap number `heap`: its
   * memory goes back to the kernel at once. Unmapped, with the free range after it if that may go
   * too, when no other heap made a view of it (nor of an earlier block over its range); else its
   * range stays, read-only, for a later block.
   */
  free(e: number, heap: number): void {
    const from = this.address(e);
    const cached = this.views.get(from);
    if (cached !== undefined) {
      detach(cached);
      this.views.delete(from);
    }
    this.cut(from, 0, heap);
  }

  /**
   * Cuts the block at `from` to `length` bytes (0: frees it) for heap `heap`, as an intent in the
   * control block first (F.LARGE_CUT_*), which finishCut carries out: a thread stopped in the
   * middle leaves the intent, and the next thread to take the global lock over from it finishes
   * the cut, so no block stays live over memory already given back.
   */
  private cut(from: number, length: number, heap: number): void {
    const f = this.floats;
    f[F.LARGE_CUT_TO] = length;
    f[F.LARGE_CUT_HEAP] = heap;
    f[F.LARGE_CUT_AT] = from;
    this.finishCut();
  }

  /** Carries out the cut the control block records, if any (idempotent: each step may have been done). */
  private finishCut(): void {
    const f = this.floats;
    const t = this.table;
    const from = f[F.LARGE_CUT_AT]!;
    const length = f[F.LARGE_CUT_TO]!;
    const heap = f[F.LARGE_CUT_HEAP]!;
    const e = from === 0 ? -1 : this.entryAt(from);
    if (e >= 0 && length < t[e * E.FLOATS + E.SIZE]! && length % getPageSize() === 0 && length >= 0) {
      const at = e * E.FLOATS;
      const size = t[at + E.SIZE]!;
      const viewers = t[at + E.VIEWERS]!;
      const keep = t[at + E.KEEP] === 1 || !(viewers === 0 || viewers === heap);
      // Given back first, then the entry changes.
      decommitRange(from + length, size - length);
      this.floats[F.MUNMAP_CALLS]!++;
      if (length > 0) {
        // A shrink: the tail, cut from the block, then recorded as free (if an entry is left:
        // else it is address space no entry holds).
        const spare = this.emptyEntry();
        t[at + E.SIZE] = length;
        this.floats[F.LARGE_BYTES]! -= size - length;
        if (spare >= 0) {
          this.record(spare, from + length, size - length, State.FREE, false, keep);
          this.mergeAround(spare);
        }
      } else if (!keep) {
        const after = this.freeAt(from + size);
        t[at + E.STATE] = State.EMPTY;
        this.floats[F.LARGE_BYTES]! -= size;
        this.floats[F.LARGE_BLOCKS]!--;
        unmapRange(from, size);
        this.floats[F.MUNMAP_CALLS]!++;
        this.noteReleased(from);
        if (after >= 0 && t[after * E.FLOATS + E.KEEP] === 0) this.unmapFree(after);
      } else {
        t[at + E.KEEP] = 1;
        t[at + E.STATE] = State.FREE;
        this.floats[F.LARGE_BYTES]! -= size;
        this.floats[F.LARGE_BLOCKS]!--;
        // Merged into a freed range before it, its start is known from the ring only.
        this.noteReleased(from);
        this.mergeAround(e);
      }
    }
    f[F.LARGE_CUT_AT] = 0;
  }

  /**
   * Claims the LIVE block of entry `e` for a realloc that moves it, by the heap in slot
   * `slot`: MOVING, so that it stays mapped while it is copied outside the lock, and any other
   * call on it is an error. free() or unclaim() ends the claim.
   */
  claim(e: number, slot: number): void {
    const at = e * E.FLOATS;
    this.table[at + E.OWNER] = slot + 1;
    this.table[at + E.STATE] = State.MOVING;
  }

  /** The MOVING entry at `ptr` (claimed by this heap), or -1. */
  claimedAt(ptr: number): number {
    const e = this.entryAt(ptr);
    return e >= 0 && this.table[e * E.FLOATS + E.STATE] === State.MOVING ? e : -1;
  }

  /** Ends a claim without a free: the block is LIVE again (the move failed, or its mover's thread ended). */
  unclaim(e: number): void {
    this.table[e * E.FLOATS + E.STATE] = State.LIVE;
  }

  /** Every block the heap in slot `slot` was moving when its thread ended: live again, where its owner left it. */
  unclaimAll(slot: number): void {
    const t = this.table;
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] === State.MOVING && t[at + E.OWNER] === slot + 1) t[at + E.STATE] = State.LIVE;
    }
  }

  /**
   * Resizes the block of entry `e` to `length` bytes (whole pages) where it lies: shrinks it
   * (its tail becomes a freed range), or grows it over the freed range after it or the free
   * address space after it. False when it cannot stay.
   */
  resize(e: number, length: number, heap: number): boolean {
    const t = this.table;
    const at = e * E.FLOATS;
    const from = t[at + E.ADDRESS]!;
    const size = t[at + E.SIZE]!;
    if (length === size) return true;
    if (length < size) {
      if (this.emptyEntry() < 0) return false;
      this.cut(from, length, heap);
      return true;
    }
    const more = length - size;
    const next = this.freeAt(from + size);
    if (next >= 0 && t[next * E.FLOATS + E.SIZE]! >= more) {
      // Read-write while the range still holds it; the range shrinks from its head, its size
      // first (so that it never reaches past its own end), then the block grows.
      if (!this.commit(from + size, more)) return false;
      const n = next * E.FLOATS;
      if (t[n + E.KEEP] === 1) t[at + E.KEEP] = 1;
      const rest = t[n + E.SIZE]! - more;
      if (rest === 0) {
        t[n + E.STATE] = State.EMPTY;
      } else {
        t[n + E.SIZE] = rest;
        t[n + E.ADDRESS] = from + length;
      }
    } else {
      this.floats[F.MMAP_CALLS]!++;
      if (!growInPlace(from, size, length)) return false;
    }
    t[at + E.SIZE] = length;
    this.floats[F.LARGE_BYTES]! += more;
    return true;
  }

  /**
   * This thread's view of `n` bytes at `ptr` in the block of entry `e`: one view per block, made
   * at its first use and kept while the block lives (a view of a freed block is detached, where the
   * runtime can, when this thread next looks for it).
   */
  view(e: number, ptr: number, n: number, heap: number): Uint8Array {
    const start = this.address(e);
    const size = this.size(e);
    const at = e * E.FLOATS;
    const serial = this.table[at + E.SERIAL]!;
    let cached = this.views.get(start);
    if (cached === undefined || cached.serial !== serial || cached.bytes.length !== size) {
      if (cached !== undefined) detach(cached);
      if (size > MAX_VIEW_BYTES) throw new RangeError(`bytes(${hex(ptr)}): a block of ${size} bytes is more than one view can hold`);
      if (this.views.size >= VIEWS_KEPT) this.dropStaleViews();
      // Recorded before the view exists: a free in another heap then keeps the range mapped.
      const viewers = this.table[at + E.VIEWERS]!;
      if (viewers !== heap) this.table[at + E.VIEWERS] = viewers === 0 ? heap : -1;
      cached = { serial, bytes: new Uint8Array(viewRange(start, size)) };
      this.views.set(start, cached);
    }
    return cached.bytes.subarray(ptr - start, ptr - start + n);
  }

  /**
   * After a thread died holding the global lock: the cut it was making finished, and the counts
   * made again from the entries.
   */
  recover(): void {
    this.finishCut();
    this.recount();
  }

  /** Unmaps every range the table holds, live or free: the last heap over it is closing. */
  releaseAll(): number {
    const t = this.table;
    let calls = 0;
    for (const cached of this.views.values()) detach(cached);
    this.views.clear();
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] === State.EMPTY) continue;
      t[at + E.STATE] = State.EMPTY;
      unmapRange(t[at + E.ADDRESS]!, t[at + E.SIZE]!);
      calls++;
    }
    this.ints[I.LARGE_TOP] = 0;
    this.released.fill(0);
    this.floats[F.LARGE_BYTES] = 0;
    this.floats[F.LARGE_BLOCKS] = 0;
    return calls;
  }

  /** Drops this thread's views (its heap is closing): they are detached where the runtime can. */
  forgetViews(): void {
    for (const cached of this.views.values()) detach(cached);
    this.views.clear();
  }

  /** Drops the views of blocks no longer live with the serial they were made for. */
  private dropStaleViews(): void {
    const t = this.table;
    const live = new Set<number>();
    for (let e = 0; e < this.top(); e++) if (t[e * E.FLOATS + E.STATE] === State.LIVE) live.add(t[e * E.FLOATS + E.SERIAL]!);
    for (const [start, cached] of this.views) {
      if (!live.has(cached.serial)) {
        detach(cached);
        this.views.delete(start);
      }
    }
  }
}

/** Detaches a view this thread made, where the runtime can, so that typed arrays over it read as empty. */
function detach(cached: CachedView): void {
  const buffer = cached.bytes.buffer as ArrayBuffer & { transfer?: () => ArrayBuffer };
  if (canDetach && buffer.byteLength !== 0) buffer.transfer!();
}
