// The large-block table of the shared preset (./shared-large.ts): its layout in the control block,
// and what every operation on it is built from. Each entry is EMPTY, LIVE (a block: its range
// read-write and handed out), MOVING (a live block a realloc is moving out) or FREE (a range kept
// for a later block, costing no memory). This layer finds entries, writes them, merges free
// ranges, proves the whole table (check) and counts it again (recount); the operations a heap
// calls, and the order of their writes, are LargeTable's.
//
// Invariants it keeps:
// - record() writes an entry's state last, so a thread stopped while it writes leaves the entry
//   as it was; mergeAround() empties the entry that gives its range up before the other grows
//   over it, so no byte is ever in two entries.
// - F.LARGE_BYTES and F.LARGE_BLOCKS count the LIVE and MOVING entries (becomeLive adds to them,
//   LargeTable's cuts take from them); recount() makes them again from the entries.
// - Entries at and past I.LARGE_TOP are EMPTY; top() reads I.LARGE_TOP clamped to the table, so a
//   damaged count never takes a scan past it.

import { HeapError, hex } from './errors.js';
import { doubleFree, invalidPointer } from './fast-arena.js';
import type { RegionInfo } from './types.js';
import { MAX_ADDRESS, commitRange, getPageSize, isMapped, isReadWrite, unmapRange } from '../os/memory.js';
import { F, I } from './shared-control.js';

/** Entries in the table: live blocks and free ranges together. */
export const LARGE_ENTRIES = 4096;
/** Float64 slots per entry. */
export const enum E {
  ADDRESS = 0,
  SIZE = 1,
  STATE = 2,
  /**
   * A number given to the block when it became LIVE, never given again: a view made for it is
   * good while it matches. A FREE range keeps it while it begins where that block began, else 0.
   */
  SERIAL = 3,
  /** A LIVE block's viewers: 0 none, the number of the one heap that made a view of it, or -1 for more than one. */
  VIEWERS = 4,
  /**
   * 1 when a view some heap made of an earlier block may still lie over the range (it then stays
   * mapped while a heap is open; a block made over such a range keeps the mark), else 0.
   */
  KEEP = 5,
  /** A MOVING block's mover: its heap's slot + 1. */
  OWNER = 6,
  FLOATS = 7,
}
export const enum State {
  EMPTY = 0,
  LIVE = 1,
  FREE = 2,
  /** A block a realloc is moving out (claimed): live, but no other call may use it. */
  MOVING = 3,
}
/** Addresses of the latest blocks freed that the table remembers, for ERR_DOUBLE_FREE. */
export const RELEASED_KEPT = 256;
/** The table's bytes in the control block: its entries, then the addresses of blocks freed (a ring). */
export const LARGE_TABLE_BYTES = 8 * (E.FLOATS * LARGE_ENTRIES + RELEASED_KEPT);

/** The large-block table's entries, as one thread sees them. */
export class LargeEntries {
  protected readonly table: Float64Array;
  /** The ring of RELEASED_KEPT addresses of blocks freed; I.LARGE_RELEASED is where the next goes. */
  protected readonly released: Float64Array;

  /** Over the LARGE_TABLE_BYTES at `at` in `control`, and the control block's counters. */
  constructor(control: SharedArrayBuffer, at: number, protected readonly ints: Int32Array, protected readonly floats: Float64Array) {
    this.table = new Float64Array(control, at, E.FLOATS * LARGE_ENTRIES);
    this.released = new Float64Array(control, at + 8 * E.FLOATS * LARGE_ENTRIES, RELEASED_KEPT);
  }

  /** Bytes and blocks live (as counted). */
  bytes(): number {
    return this.floats[F.LARGE_BYTES]!;
  }

  blocks(): number {
    return this.floats[F.LARGE_BLOCKS]!;
  }

  /** The index of the LIVE entry whose range holds `ptr`, or -1. */
  find(ptr: number): number {
    const t = this.table;
    const top = this.top();
    for (let e = 0; e < top; e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] === State.LIVE && ptr >= t[at + E.ADDRESS]! && ptr < t[at + E.ADDRESS]! + t[at + E.SIZE]!) return e;
    }
    return -1;
  }

  address(e: number): number {
    return this.table[e * E.FLOATS + E.ADDRESS]!;
  }

  size(e: number): number {
    return this.table[e * E.FLOATS + E.SIZE]!;
  }

  /**
   * The error for `ptr`, no live block's start: a double free where a freed block's range begins,
   * or at one of the latest RELEASED_KEPT blocks freed whose page is unmapped or inside a freed
   * range still (a block freed longer ago is no longer known: an invalid pointer); else an
   * invalid pointer.
   */
  notBlock(ptr: number, op: string): HeapError {
    const t = this.table;
    const top = this.top();
    let inFree = false;
    for (let e = 0; e < top; e++) {
      const at = e * E.FLOATS;
      const state = t[at + E.STATE];
      if (t[at + E.ADDRESS] === ptr && (state === State.MOVING || (state === State.FREE && t[at + E.SERIAL] !== 0))) {
        return doubleFree(op, ptr);
      }
      if (state === State.FREE && ptr > t[at + E.ADDRESS]! && ptr < t[at + E.ADDRESS]! + t[at + E.SIZE]!) inFree = true;
    }
    if (ptr > 0 && ptr % getPageSize() === 0 && this.released.includes(ptr) && (inFree || !isMapped(ptr, getPageSize()))) {
      return doubleFree(op, ptr);
    }
    return invalidPointer(op, ptr);
  }

  /** The live blocks, one region each. */
  regions(): RegionInfo[] {
    const regions: RegionInfo[] = [];
    const t = this.table;
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] !== State.LIVE && t[at + E.STATE] !== State.MOVING) continue;
      const address = t[at + E.ADDRESS]!;
      const size = t[at + E.SIZE]!;
      regions.push({ address, size, blocks: [{ address, size, free: false, name: '' }] });
    }
    return regions;
  }

  /**
   * Proves the table: every entry's state, ranges of whole pages that do not overlap, live ones
   * read-write in this process, and the counts. Throws ERR_HEAP_CORRUPTED at the first that fails.
   */
  check(): void {
    const t = this.table;
    const top = this.top();
    const page = getPageSize();
    const ranges: [number, number, number][] = [];
    let bytes = 0;
    let blocks = 0;
    for (let e = 0; e < LARGE_ENTRIES; e++) {
      const at = e * E.FLOATS;
      const state = t[at + E.STATE]!;
      if (state === State.EMPTY) continue;
      const from = t[at + E.ADDRESS]!;
      const size = t[at + E.SIZE]!;
      if (e >= top || (state !== State.LIVE && state !== State.FREE && state !== State.MOVING)) corrupted(`entry ${e} of the large-block table is in state ${state}`);
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(size) || from <= 0 || size <= 0 || from % page !== 0 ||
          size % page !== 0 || from + size > MAX_ADDRESS) {
        corrupted(`entry ${e} of the large-block table holds ${size} bytes at ${from}, not whole pages`);
      }
      if (state !== State.FREE) {
        bytes += size;
        blocks++;
        if (!isReadWrite(from, size)) corrupted(`the large block at ${hex(from)} (${size} bytes) is not read-write memory`);
      }
      ranges.push([from, size, e]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      const [from, size, e] = ranges[i - 1]!;
      if (from + size > ranges[i]![0]) corrupted(`entries ${e} and ${ranges[i]![2]} of the large-block table overlap`);
    }
    if (bytes !== this.bytes() || blocks !== this.blocks()) {
      corrupted(`the large-block table holds ${blocks} blocks of ${bytes} bytes, counted as ${this.blocks()} of ${this.bytes()}`);
    }
  }

  protected recount(): void {
    const t = this.table;
    let bytes = 0;
    let blocks = 0;
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] !== State.LIVE && t[at + E.STATE] !== State.MOVING) continue;
      bytes += t[at + E.SIZE]!;
      blocks++;
    }
    this.floats[F.LARGE_BYTES] = bytes;
    this.floats[F.LARGE_BLOCKS] = blocks;
  }

  protected top(): number {
    const top = this.ints[I.LARGE_TOP]!;
    return top >= 0 && top <= LARGE_ENTRIES ? top : LARGE_ENTRIES;
  }

  /** An EMPTY entry, the table's top raised over it if need be; -1 when every entry is taken. */
  protected emptyEntry(): number {
    const t = this.table;
    const top = this.top();
    for (let e = 0; e < top; e++) if (t[e * E.FLOATS + E.STATE] === State.EMPTY) return e;
    if (top === LARGE_ENTRIES) return -1;
    this.ints[I.LARGE_TOP] = top + 1;
    return top;
  }

  /** The LIVE or MOVING entry whose block begins at `address`, or -1. */
  protected entryAt(address: number): number {
    const t = this.table;
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if ((t[at + E.STATE] === State.LIVE || t[at + E.STATE] === State.MOVING) && t[at + E.ADDRESS] === address) return e;
    }
    return -1;
  }

  /** The FREE entry whose range begins at `address`, or -1. */
  protected freeAt(address: number): number {
    const t = this.table;
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] === State.FREE && t[at + E.ADDRESS] === address) return e;
    }
    return -1;
  }

  /**
   * Writes entry `e`, its state last: until then the entry is what it was. A block gets a new
   * serial and no viewers; a free range no serial (0: it begins where no block was freed), and
   * `keep`.
   */
  protected record(e: number, address: number, size: number, state: State, block: boolean, keep: boolean): void {
    const t = this.table;
    const at = e * E.FLOATS;
    t[at + E.ADDRESS] = address;
    t[at + E.SIZE] = size;
    t[at + E.SERIAL] = block ? ++this.floats[F.LARGE_SERIAL]! : 0;
    t[at + E.VIEWERS] = 0;
    t[at + E.KEEP] = keep ? 1 : 0;
    t[at + E.STATE] = state;
  }

  protected becomeLive(e: number, address: number, size: number, keep: boolean): void {
    this.record(e, address, size, State.LIVE, true, keep);
    this.floats[F.LARGE_BYTES]! += size;
    this.floats[F.LARGE_BLOCKS]!++;
  }

  /**
   * Merges FREE entry `e` with the FREE ranges just before and after it: the entry that gives its
   * range up is emptied before the other grows over it, so no byte is ever in two entries.
   */
  protected mergeAround(e: number): void {
    const t = this.table;
    const at = e * E.FLOATS;
    const after = this.freeAt(t[at + E.ADDRESS]! + t[at + E.SIZE]!);
    if (after >= 0) {
      const size = t[after * E.FLOATS + E.SIZE]!;
      const keep = t[after * E.FLOATS + E.KEEP]!;
      t[after * E.FLOATS + E.STATE] = State.EMPTY;
      if (keep !== 0) t[at + E.KEEP] = 1;
      t[at + E.SIZE]! += size;
    }
    for (let b = 0; b < this.top(); b++) {
      const bt = b * E.FLOATS;
      if (b !== e && t[bt + E.STATE] === State.FREE && t[bt + E.ADDRESS]! + t[bt + E.SIZE]! === t[at + E.ADDRESS]) {
        const size = t[at + E.SIZE]!;
        const keep = t[at + E.KEEP]!;
        t[at + E.STATE] = State.EMPTY;
        if (keep !== 0) t[bt + E.KEEP] = 1;
        t[bt + E.SIZE]! += size;
        return;
      }
    }
  }

  /** Records `from`, a block's address just freed, in the ring notBlock reads. */
  protected noteReleased(from: number): void {
    const next = this.ints[I.LARGE_RELEASED]!;
    const slot = next >= 0 && next < RELEASED_KEPT ? next : 0;
    this.released[slot] = from;
    this.ints[I.LARGE_RELEASED] = (slot + 1) % RELEASED_KEPT;
  }

  /** Makes `length` bytes at `address` read-write; false when the kernel refuses. */
  protected commit(address: number, length: number): boolean {
    this.floats[F.MMAP_CALLS]!++;
    return commitRange(address, length);
  }

  /** Unmaps free range `e`, its entry emptied first (a thread stopped between leaves the range to no entry). */
  protected unmapFree(e: number): void {
    const at = e * E.FLOATS;
    this.table[at + E.STATE] = State.EMPTY;
    unmapRange(this.table[at + E.ADDRESS]!, this.table[at + E.SIZE]!);
    this.floats[F.MUNMAP_CALLS]!++;
  }

  /**
   * Unmaps every free range no other heap's view may lie over (KEEP 0): when the kernel refuses
   * address space. The entry is emptied first. Returns how many went.
   */
  protected unmapSpare(): number {
    const t = this.table;
    let n = 0;
    for (let e = 0; e < this.top(); e++) {
      const at = e * E.FLOATS;
      if (t[at + E.STATE] === State.FREE && t[at + E.KEEP] === 0) {
        this.unmapFree(e);
        n++;
      }
    }
    return n;
  }
}

function corrupted(message: string): never {
  throw new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted: ${message}`);
}
