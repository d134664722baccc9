// The shared preset's state (./shared.ts has the calls): the control block, a SharedArrayBuffer
// that the handle carries (its layout is ./shared-control.ts); one reservation, split into the arena
// of blocks and the arena of small-object pages (./shared-supply.ts), each thread seeing it through
// one view of its own; and the lock around what the fast preset does under it.
//
// Holding the lock, a thread loads the fast preset's counters from the control block into its own
// fields (only if another heap held the lock since) and stores them back before it lets go. The
// lock names its holder's thread; a waiter takes it over from a thread that died holding it
// (acquire), and then repairs what that thread may have left half done: the arena is rebuilt from
// its blocks (FastHeap.rebuildArena), and the heaps of ended threads are reclaimed (./shared-slots.ts).

import { HeapError, destroyedError } from './errors.js';
import { FastHeap } from './fast.js';
import { Block } from '../layout/fast.js';
import { Page } from '../layout/pages.js';
import type { ResolvedOptions } from './options.js';
import type { SharedHeapHandle } from './types.js';
import { FL_COUNT, SL_COUNT } from '../strategies/tlsf.js';
import {
  adoptReservation, getPageSize, isMapped, isReadWrite, releaseReservation, reserveAddressSpace, splitReservation, type Reservation,
} from '../os/memory.js';
import { currentThread, type ThreadIdentity } from '../os/threads.js';
import { SmallSupply } from './shared-supply.js';
import {
  ControlLayout, F, HEADS_AT, I, MAGIC, MAX_OPEN, SLOTS_AT, SL_MAPS_AT, SMALL_ARENA_BYTES, Slot, acquire, release, threadId,
} from './shared-control.js';

const ARENA_BYTES = 2 ** 30;
const ARENA_MIN_BYTES = 16 * 1024 * 1024;

/** The small-object arena's share of a reservation of `total` bytes: a quarter, at most SMALL_ARENA_BYTES. */
function smallArenaBytes(total: number): number {
  return Math.min(SMALL_ARENA_BYTES, total / 4);
}

export abstract class SharedState extends FastHeap {
  protected readonly control: SharedArrayBuffer;
  protected readonly ints: Int32Array;
  protected readonly floats: Float64Array;
  /** Calls into this heap in progress on this thread (malloc within realloc...): the lock is held once. */
  protected depth = 0;
  /** This heap was closed (or destroyed): its thread has let go of the arena. */
  protected closed = false;
  /** This heap's number among those over the arena, from 1. */
  protected readonly id: number;
  /** This heap's thread, and its id in the control block: what the lock and the slot say of their holder. */
  protected readonly thread: ThreadIdentity | undefined;
  protected readonly threadId: number;
  /** This heap's slot in the control block (./shared-slots.ts); -1 until it has one. */
  protected slot = -1;
  /** The slots' records (see Slot in ./shared-control.ts), as Int32 and as Float64. */
  protected readonly slotInts: Int32Array;
  protected readonly slotFloats: Float64Array;
  /** Bytes from the arena's start this thread has seen read-write (see enter). */
  protected provenTop = 0;
  /** The small-object arena's bytes, in the view over both arenas. */
  protected readonly smallBytes: Uint8Array;
  /** Where the control block's parts lie. */
  protected readonly layout: ControlLayout;
  /** The small-object arena's supply of pages (used under the lock). */
  protected readonly supply: SmallSupply;
  /** The owner of each small page (a heap's tag, its slot + 1). */
  protected readonly pageOwners: Int32Array;

  /** Made by `new Heap({ shared: true })`, or by Heap.attach with the handle of one. */
  constructor(options: ResolvedOptions, handle?: SharedHeapHandle) {
    super(options);
    const me = currentThread();
    this.thread = me;
    if (handle === undefined) {
      // One reservation, as before there were small-object pages: its last quarter (at most
      // SMALL_ARENA_BYTES) holds them, the rest the blocks.
      const whole = reserveAddressSpace(ARENA_BYTES, ARENA_MIN_BYTES);
      if (whole === null) throw new Error('a shared heap needs 16 MiB of address space at least, and the kernel refused it');
      const [arena, smallArena] = splitReservation(whole, whole.size - smallArenaBytes(whole.size));
      this.layout = new ControlLayout(arena.size, smallArena.size);
      try {
        this.control = new SharedArrayBuffer(this.layout.bytes);
      } catch (e) {
        releaseReservation(arena);
        releaseReservation(smallArena);
        throw new Error(`a shared heap's control block (${this.layout.bytes} bytes) could not be allocated: ${(e as Error).message}`);
      }
      this.ints = new Int32Array(this.control, 0, I.COUNT);
      this.floats = new Float64Array(this.control, 4 * I.COUNT, F.COUNT);
      this.floats[F.ADDRESS] = arena.address;
      this.floats[F.SIZE] = arena.size;
      this.floats[F.TRIM_THRESHOLD] = this.trimThreshold;
      this.floats[F.MMAP_CALLS] = 2;
      this.floats[F.SMALL_ADDRESS] = smallArena.address;
      this.floats[F.SMALL_SIZE] = smallArena.size;
      this.floats[F.SMALL_TOP] = this.floats[F.SMALL_FRESH] = SmallSupply.start();
      this.id = this.ints[I.HEAPS] = 1;
      Atomics.store(this.ints, I.MAGIC, MAGIC);
      this.useArena(arena);
      this.supply = this.makeSupply(smallArena);
    } else {
      this.control = handle.control;
      this.ints = new Int32Array(this.control, 0, I.COUNT);
      this.floats = new Float64Array(this.control, 4 * I.COUNT, F.COUNT);
      this.id = Atomics.add(this.ints, I.HEAPS, 1) + 1;
      this.layout = provenLayout(this.floats, this.control.byteLength);
      const [arena, smallArena] = splitReservation(provenArenas(this.ints, this.floats), this.floats[F.SIZE]!);
      this.useArena(arena);
      this.supply = this.makeSupply(smallArena);
    }
    this.smallBytes = new Uint8Array(this.reservation!.buffer, this.supply.arena.address - this.base, this.supply.arena.size);
    this.pageOwners = this.supply.owners;
    this.threadId = threadId(me?.tid, this.id);
    this.slotInts = new Int32Array(this.control, SLOTS_AT, Slot.INTS * MAX_OPEN);
    this.slotFloats = new Float64Array(this.control, SLOTS_AT, Slot.FLOATS * MAX_OPEN);
    this.cacheDepth = 0;
    // Pages given back are marked in one thread's state only: the arena's free blocks keep theirs.
    this.purgeMin = Infinity;
    // Requests the arena cannot hold go to mallocLarge, which says out of memory.
    this.largeThreshold = this.reservation!.size;
    this.lists.heads = new Uint32Array(this.control, HEADS_AT, FL_COUNT * SL_COUNT);
    this.lists.slMaps = new Int32Array(this.control, SL_MAPS_AT, FL_COUNT);
    this.starts = new Int32Array(this.control, this.layout.startsAt);
    this.lists.starts = this.starts;
  }

  protected useArena(arena: Reservation): void {
    this.reservation = arena;
    this.base = arena.address;
    this.mem = new Uint32Array(arena.buffer);
    this.bytesView = new Uint8Array(arena.buffer);
    this.lists.mem = this.mem;
  }

  protected makeSupply(smallArena: Reservation): SmallSupply {
    const c = this.control;
    const l = this.layout;
    const pages = l.smallPages;
    return new SmallSupply(smallArena, this.ints, this.floats, new Uint8Array(c, l.marksAt, pages * Page.GRANULES),
      new Int32Array(c, l.classesAt, pages), new Int32Array(c, l.ownersAt, pages), new Int32Array(c, l.remoteAt, pages),
      new Int32Array(c, l.stackAt, pages));
  }

  /** Reclaims the heaps of threads that have ended (./shared-slots.ts); under the lock. */
  protected abstract reclaimDeadSlots(flush?: boolean): number;

  /** A structured-cloneable handle: post it to a worker, and `Heap.attach(handle)` there. */
  override handle(): SharedHeapHandle {
    return {
      kind: 'ffi-heap/shared',
      version: 1,
      control: this.control,
      options: { scribble: this.scribble, limit: this.limit, throwOnOutOfMemory: this.throwOnOutOfMemory },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The lock, and the fast preset's fields loaded from and stored to the control block under it.

  /** Takes the lock (once per thread, however deep the calls) and loads the shared state. */
  protected enter(): void {
    if (this.depth++ > 0) return;
    if (this.closed) {
      this.depth = 0;
      throw destroyedError();
    }
    const tookOver = acquire(this.ints, I.LOCK, this.threadId);
    if (this.ints[I.DESTROYED] !== 0) {
      this.depth = 0;
      release(this.ints, I.LOCK);
      throw destroyedError();
    }
    if (tookOver) {
      this.repair();
      return;
    }
    // The fields still hold what this heap stored when it last let go, unless another took the lock since.
    if (this.ints[I.HOLDER] === this.id) return;
    const top = this.floats[F.TOP]!;
    // The arena's range was proved on attach; a top past it, or past what is committed, would lead
    // reads out of it. What lies below `provenTop` was found read-write already; growth is
    // geometric, so the look at the kernel's mappings is rare.
    if (!validTop(top, this.reservation!.size) || (top > this.provenTop && !isReadWrite(this.base + this.provenTop, top - this.provenTop))) {
      this.depth = 0;
      release(this.ints, I.LOCK);
      throw new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted: the control block's top (${top}) is not inside the arena's committed memory`);
    }
    this.provenTop = top;
    this.load(top);
  }

  /** The fast preset's fields, from the control block, with the arena's top at `top`. */
  protected load(top: number): void {
    const f = this.floats;
    this.top = top;
    this.committedTop = top;
    this.lists.limit = top;
    this.lists.flMap = this.ints[I.FL_MAP]!;
    this.lists.count = f[F.LISTED]!;
    this.blockCount = f[F.BLOCKS]!;
    this.inUse = f[F.IN_USE]!;
    this.peakInUse = f[F.PEAK_IN_USE]!;
    this.peakMapped = f[F.PEAK_MAPPED]!;
    this.mmapCalls = f[F.MMAP_CALLS]!;
    this.munmapCalls = f[F.MUNMAP_CALLS]!;
    this.trimThreshold = f[F.TRIM_THRESHOLD]!;
  }

  /**
   * After taking the lock over from a thread that died holding it: the arena is rebuilt from its
   * blocks (FastHeap.rebuildArena), and the heaps of ended threads are reclaimed. The dead thread
   * may have been growing or trimming the arena, so the top is taken as what the control block
   * says, lowered to the memory that is read-write.
   */
  protected repair(): void {
    let top = this.floats[F.TOP]!;
    if (!validTop(top, this.reservation!.size)) top = 0;
    const page = getPageSize();
    if (top > 0 && !isReadWrite(this.base, top)) {
      // Committed memory runs from the arena's start: the longest read-write run, by halving.
      let low = 0;
      let high = top / page;
      while (low < high) {
        const mid = Math.ceil((low + high) / 2);
        if (isReadWrite(this.base, mid * page)) low = mid;
        else high = mid - 1;
      }
      top = low * page;
      // Too little for a block and the sentinel: no arena.
      if (top < 2 * Block.HEADER + Block.MIN) top = 0;
    }
    this.provenTop = top;
    this.load(top);
    const held = this.rebuildArena();
    // Cached blocks count as in use in the shared count (see the accounting note above).
    this.inUse = held;
    if (held > this.peakInUse) this.peakInUse = held;
    this.ints[I.REPAIRS]!++;
    this.reclaimDeadSlots();
  }

  /** Stores the shared state and lets go of the lock, when the outermost call ends. */
  protected leave(): void {
    if (--this.depth > 0) return;
    const f = this.floats;
    f[F.TOP] = this.top;
    this.ints[I.FL_MAP] = this.lists.flMap;
    f[F.LISTED] = this.lists.count;
    f[F.BLOCKS] = this.blockCount;
    f[F.IN_USE] = this.inUse;
    f[F.PEAK_IN_USE] = this.peakInUse;
    f[F.PEAK_MAPPED] = this.peakMapped;
    f[F.MMAP_CALLS] = this.mmapCalls;
    f[F.MUNMAP_CALLS] = this.munmapCalls;
    f[F.TRIM_THRESHOLD] = this.trimThreshold;
    this.ints[I.HOLDER] = this.id;
    if (this.slot >= 0) this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = 0;
    release(this.ints, I.LOCK);
  }
}

function validTop(top: number, arenaSize: number): boolean {
  return Number.isSafeInteger(top) && top >= 0 && top <= arenaSize && top % getPageSize() === 0;
}

/**
 * The arenas a control block describes, once proved: one range, the arena's and then the
 * small-object arena's (their sizes proved with the layout), mapped in this process, with tops
 * inside them, under a heap still open. The control block is JavaScript memory, out of native
 * code's reach, but a handle can come from anywhere. (That the arenas are read-write up to their
 * tops is proved under the lock, by enter.)
 */
function provenArenas(ints: Int32Array, floats: Float64Array): Reservation {
  const address = floats[F.ADDRESS]!;
  const size = floats[F.SIZE]!;
  const small = floats[F.SMALL_SIZE]!;
  const smallTop = floats[F.SMALL_TOP]!;
  const fresh = floats[F.SMALL_FRESH]!;
  if (!validTop(floats[F.TOP]!, size) || floats[F.SMALL_ADDRESS] !== address + size || !validTop(smallTop, small) ||
      !(fresh >= SmallSupply.start() && fresh <= smallTop && fresh % Page.BYTES === 0) || ints[I.OPEN]! < 1 ||
      !isMapped(address, size + small)) {
    throw new TypeError('Heap.attach: the handle\'s control block does not describe a live shared heap (its arenas or tops are damaged)');
  }
  return adoptReservation(address, size + small);
}

/** The layout of a control block of `bytes` bytes, from the arenas' sizes it records, once they prove to match it. */
function provenLayout(floats: Float64Array, bytes: number): ControlLayout {
  const size = floats[F.SIZE]!;
  const small = floats[F.SMALL_SIZE]!;
  const total = size + small;
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(small) || total < ARENA_MIN_BYTES || total > ARENA_BYTES ||
      total % getPageSize() !== 0 || small !== smallArenaBytes(total) || new ControlLayout(size, small).bytes !== bytes) {
    throw new TypeError('Heap.attach: the handle\'s control block does not describe a live shared heap (its arenas\' sizes are damaged)');
  }
  return new ControlLayout(size, small);
}
