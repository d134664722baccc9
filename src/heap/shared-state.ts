// The shared preset's state (./shared.ts has the calls): the control block, a SharedArrayBuffer
// that the handle carries (its layout is ./shared-control.ts); one reservation, split into the
// arenas of blocks and the arena of small-object pages (./shared-supply.ts), each thread seeing it
// through one view of its own; and the locks around what the fast preset does in an arena.
//
// The blocks' part of the reservation is cut into arenas (arenaSpan): the main arena and the
// thread arenas, each with a lock, free lists, counters and start bitmap of its own in the control
// block. A heap's fields are those of one arena at a time (bind): holding an arena's lock, a thread
// loads that arena's counters into them (only if another heap held that lock since), runs the fast
// preset's own code over it, and stores them back before it lets go; between calls the fields
// show its home arena, whose blocks its lock-free caches hold. The lock names its holder's thread;
// a waiter takes it over from a thread that died holding it (acquire), and then rebuilds that
// arena from its blocks (FastCheck.rebuildArena). A thread holds one arena's lock at a time.

import { HeapError, destroyedError } from './errors.js';
import { FastHeap } from './fast.js';
import { Block, Flag, Word } from '../layout/fast.js';
import { Page } from '../layout/pages.js';
import type { ResolvedOptions } from './options.js';
import type { SharedHeapHandle } from './types.js';
import { FL_COUNT, SL_COUNT } from '../strategies/tlsf.js';
import {
  adoptReservation, getPageSize, isMapped, isReadWrite, releaseReservation, reserveAddressSpace, splitReservation, type Reservation,
} from '../os/memory.js';
import { currentThread, type ThreadIdentity } from '../os/threads.js';
import { SmallSupply } from './shared-supply.js';
import { LargeTable } from './shared-large.js';
import {
  AF, AI, ARENAS, ARENAS_AT, ARENA_RECORD_BYTES, ControlLayout, F, HEADS_AT, HEADS_BYTES, I, MAGIC, MAX_OPEN, PURGED_PAGE, SLOTS_AT, SL_MAPS_AT,
  SL_MAPS_BYTES, SMALL_ARENA_BYTES, Slot, CACHE_CLASSES, acquire, arenaSpan, release, threadId,
} from './shared-control.js';

/** The reservation: 256 MiB of small-object pages, a main arena of 768 MiB, and thread arenas of 32 MiB (see arenaSpan). */
const ARENA_BYTES = 1.25 * 2 ** 30;
const ARENA_MIN_BYTES = 16 * 1024 * 1024;

/** The small-object arena's share of a reservation of `total` bytes: a quarter, at most SMALL_ARENA_BYTES. */
function smallArenaBytes(total: number): number {
  return Math.min(SMALL_ARENA_BYTES, total / 4);
}

/** One arena of blocks, as this thread sees it: its memory, its part of the control block. */
interface ArenaView {
  readonly reservation: Reservation;
  readonly mem: Uint32Array;
  readonly bytes: Uint8Array;
  readonly starts: Int32Array;
  readonly heads: Uint32Array;
  readonly slMaps: Int32Array;
  /** The arena's record (AI as Int32, AF as Float64). */
  readonly ints: Int32Array;
  readonly floats: Float64Array;
  /** The marks of the arena's pages given back inside free blocks (FastArena.purged), a byte a page. */
  readonly purged: Uint8Array;
  /** Bytes from the arena's start this thread has seen read-write (see enter). */
  provenTop: number;
  /** The arena's top when this thread last let go of its lock, and how far its blocks had reached (FastArena.touchedTop). */
  seenTop: number;
  touchedTop: number;
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
  /** The arenas of blocks (the reservation less the small-object arena), and each arena as this thread sees it. */
  protected readonly blocks: Reservation;
  protected readonly arenas: ArenaView[];
  /** The arena whose views and fields this heap's fields are (bind); its home arena (a thread arena, once it has a slot). */
  protected bound = 0;
  protected home = 0;
  /** The arena whose counters the fields hold, as stored when this heap last let go of its lock (-1: none). */
  private loaded = -1;
  /** The home arena's caches (in the slot's record), or none: the fields show them only while the home is bound. */
  protected homeCacheHeads: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  protected homeCacheCounts: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** The caches the fields show away from home: always empty. */
  private readonly noCacheHeads = new Uint32Array(CACHE_CLASSES);
  private readonly noCacheCounts = new Int32Array(CACHE_CLASSES);
  /** While set, leave() keeps the slot's pending block: a move outside any lock records it (SharedHeap.moveOut). */
  protected keepPending = false;
  /** While set, an arena is not grown (SharedHeap.allocate's first tries). */
  protected noGrowth = false;
  /** Holds of the global lock in progress on this thread. */
  private globalDepth = 0;
  /** While set, running out of memory in an arena returns 0 whatever the options say: another arena is tried next. */
  protected trying = false;
  /** Every byte of the reservation, from the first arena's start (the arenas of blocks, then the small-object arena). */
  protected readonly wholeBytes: Uint8Array;
  /** The small-object arena's bytes, in the view over both arenas. */
  protected readonly smallBytes: Uint8Array;
  /** Where the control block's parts lie. */
  protected readonly layout: ControlLayout;
  /** The small-object arena's supply of pages (used under the lock). */
  protected readonly supply: SmallSupply;
  /** The owner of each small page (a heap's tag, its slot + 1). */
  protected readonly pageOwners: Int32Array;
  /** The large blocks, each in a mapping of its own (used under the global lock). */
  protected readonly largeTable: LargeTable;

  /** Made by `new Heap({ shared: true })`, or by Heap.attach with the handle of one. */
  constructor(options: ResolvedOptions, handle?: SharedHeapHandle) {
    super(options);
    const me = currentThread();
    this.thread = me;
    if (handle === undefined) {
      // One reservation: its last quarter (at most SMALL_ARENA_BYTES) holds the small-object
      // pages, the rest the arenas of blocks. When the kernel refuses the whole, halves of 512 MiB
      // down: the halves of 1.25 GiB (640, 320 MiB) leave a process under a tight `ulimit -v` too
      // little room for V8's own heap.
      const whole = reserveAddressSpace(ARENA_BYTES, ARENA_BYTES) ?? reserveAddressSpace(2 ** 29, ARENA_MIN_BYTES);
      if (whole === null) throw new Error('a shared heap needs 16 MiB of address space at least, and the kernel refused it');
      const [blocks, smallArena] = splitReservation(whole, whole.size - smallArenaBytes(whole.size));
      this.layout = new ControlLayout(blocks.size, smallArena.size);
      try {
        this.control = new SharedArrayBuffer(this.layout.bytes);
      } catch (e) {
        releaseReservation(blocks);
        releaseReservation(smallArena);
        throw new Error(`a shared heap's control block (${this.layout.bytes} bytes) could not be allocated: ${(e as Error).message}`);
      }
      this.ints = new Int32Array(this.control, 0, I.COUNT);
      this.floats = new Float64Array(this.control, 4 * I.COUNT, F.COUNT);
      this.floats[F.ADDRESS] = blocks.address;
      this.floats[F.SIZE] = blocks.size;
      this.floats[F.MMAP_CALLS] = 2;
      this.floats[F.SMALL_ADDRESS] = smallArena.address;
      this.floats[F.SMALL_SIZE] = smallArena.size;
      this.floats[F.SMALL_TOP] = this.floats[F.SMALL_FRESH] = SmallSupply.start();
      for (let k = 0; k < ARENAS; k++) new Float64Array(this.control, ARENAS_AT + k * ARENA_RECORD_BYTES, 16)[AF.TRIM_THRESHOLD] = this.trimThreshold;
      this.id = this.ints[I.HEAPS] = 1;
      Atomics.store(this.ints, I.MAGIC, MAGIC);
      this.blocks = blocks;
      this.supply = this.makeSupply(smallArena);
    } else {
      this.control = handle.control;
      this.ints = new Int32Array(this.control, 0, I.COUNT);
      this.floats = new Float64Array(this.control, 4 * I.COUNT, F.COUNT);
      this.id = Atomics.add(this.ints, I.HEAPS, 1) + 1;
      this.layout = provenLayout(this.floats, this.control.byteLength);
      const [blocks, smallArena] = splitReservation(provenArenas(this.ints, this.floats, this.control), this.floats[F.SIZE]!);
      this.blocks = blocks;
      this.supply = this.makeSupply(smallArena);
    }
    this.arenas = [];
    for (let k = 0; k < ARENAS; k++) this.arenas.push(this.arenaView(k));
    this.wholeBytes = new Uint8Array(this.blocks.buffer, 0, this.blocks.size + this.supply.arena.size);
    this.smallBytes = this.wholeBytes.subarray(this.blocks.size);
    this.pageOwners = this.supply.owners;
    this.largeTable = new LargeTable(this.control, this.layout.largeAt, this.ints, this.floats);
    this.threadId = threadId(me?.tid, this.id);
    this.slotInts = new Int32Array(this.control, SLOTS_AT, Slot.INTS * MAX_OPEN);
    this.slotFloats = new Float64Array(this.control, SLOTS_AT, Slot.FLOATS * MAX_OPEN);
    this.cacheDepth = 0;
    this.bind(0);
  }

  /** Arena `k` as this thread sees it: views of its memory and of its part of the control block. */
  private arenaView(k: number): ArenaView {
    const [offset, size] = arenaSpan(this.blocks.size, k);
    const c = this.control;
    const buffer = this.blocks.buffer;
    return {
      reservation: { address: this.blocks.address + offset, size, buffer, mapped: true },
      mem: new Uint32Array(buffer, offset, size >>> 2),
      bytes: new Uint8Array(buffer, offset, size),
      starts: new Int32Array(c, this.layout.startsAt + offset / 128, size / 512),
      purged: new Uint8Array(c, this.layout.purgedAt + offset / PURGED_PAGE, size / getPageSize()),
      heads: new Uint32Array(c, HEADS_AT + k * HEADS_BYTES, FL_COUNT * SL_COUNT),
      slMaps: new Int32Array(c, SL_MAPS_AT + k * SL_MAPS_BYTES, FL_COUNT),
      ints: new Int32Array(c, ARENAS_AT + k * ARENA_RECORD_BYTES, ARENA_RECORD_BYTES >>> 2),
      floats: new Float64Array(c, ARENAS_AT + k * ARENA_RECORD_BYTES, ARENA_RECORD_BYTES >>> 3),
      provenTop: 0,
      seenTop: 0,
      touchedTop: 0,
    };
  }

  /**
   * Points this heap's fields at arena `k`: its memory, lists and start bitmap, and (at home) this
   * heap's caches; its counters are loaded by enter. Requests the arena cannot hold go to
   * mallocLarge, which says out of memory (then another arena is tried).
   */
  protected bind(k: number): void {
    const view = this.arenas[k]!;
    this.bound = k;
    this.reservation = view.reservation;
    this.base = view.reservation.address;
    this.mem = view.mem;
    this.bytesView = view.bytes;
    this.starts = view.starts;
    this.purged = view.purged;
    this.lists.mem = view.mem;
    this.lists.starts = view.starts;
    this.lists.heads = view.heads;
    this.lists.slMaps = view.slMaps;
    this.largeThreshold = view.reservation.size;
    this.top = this.committedTop = view.seenTop;
    this.touchedTop = view.touchedTop;
    this.lastSpan = 0;
    const home = k === this.home && this.slot >= 0;
    this.cacheHeads = home ? this.homeCacheHeads : this.noCacheHeads;
    this.cacheCounts = home ? this.homeCacheCounts : this.noCacheCounts;
  }

  /** The arena that address `ptr` falls in, or -1. */
  protected arenaOf(ptr: number): number {
    const d = ptr - this.blocks.address;
    if (!(d >= 0 && d < this.blocks.size)) return -1;
    // The split arenaSpan made: the main arena first, then thread arenas all of one size.
    const main = this.arenas[0]!.reservation.size;
    return d < main ? 0 : 1 + Math.floor((d - main) / this.arenas[1]!.reservation.size);
  }

  protected makeSupply(smallArena: Reservation): SmallSupply {
    const c = this.control;
    const l = this.layout;
    const pages = l.smallPages;
    return new SmallSupply(smallArena, this.ints, this.floats, new Int8Array(c, l.marksAt, pages * Page.GRANULES),
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
  // The arenas' locks, and the fast preset's fields loaded from and stored to the control block under them.

  /**
   * Takes arena `k`'s lock (once per thread, however deep the calls: a call inside another stays
   * in the outer call's arena) and loads its state into the fields.
   */
  protected enter(k: number = this.home): void {
    if (this.depth++ > 0) return;
    if (this.closed) {
      this.depth = 0;
      throw destroyedError();
    }
    const view = this.arenas[k]!;
    const tookOver = acquire(view.ints, AI.LOCK, this.threadId);
    if (this.ints[I.DESTROYED] !== 0) {
      this.depth = 0;
      release(view.ints, AI.LOCK);
      throw destroyedError();
    }
    if (this.bound !== k) this.bind(k);
    if (tookOver) {
      this.repair();
      return;
    }
    // The fields still hold what this heap stored when it last let go, unless another took the lock since.
    if (this.loaded === k && view.ints[AI.HOLDER] === this.id) return;
    const top = view.floats[AF.TOP]!;
    // The arena's range was proved on attach; a top past it, or past what is committed, would lead
    // reads out of it. What lies below `provenTop` was found read-write already; growth is
    // geometric, so the look at the kernel's mappings is rare.
    if (!validTop(top, view.reservation.size) ||
        (top > view.provenTop && !isReadWrite(this.base + view.provenTop, top - view.provenTop))) {
      this.depth = 0;
      release(view.ints, AI.LOCK);
      this.bind(this.home);
      throw new HeapError('ERR_HEAP_CORRUPTED', `heap corrupted: the control block's top (${top}) is not inside the arena's committed memory`);
    }
    view.provenTop = top;
    this.load(top);
  }

  /** The fast preset's fields, from the control block's record of the bound arena, with its top at `top`. */
  protected load(top: number): void {
    const view = this.arenas[this.bound]!;
    const f = view.floats;
    this.top = top;
    this.committedTop = top;
    this.lists.limit = top;
    this.lists.flMap = view.ints[AI.FL_MAP]!;
    this.lists.count = f[AF.LISTED]!;
    this.blockCount = f[AF.BLOCKS]!;
    this.inUse = f[AF.IN_USE]!;
    this.mmapCalls = f[AF.MMAP_CALLS]!;
    this.munmapCalls = f[AF.MUNMAP_CALLS]!;
    this.trimThreshold = f[AF.TRIM_THRESHOLD]!;
    this.purgedBytes = f[AF.PURGED]!;
    this.peakInUse = this.floats[F.PEAK_IN_USE]!;
    this.peakMapped = this.floats[F.PEAK_MAPPED]!;
    this.loaded = this.bound;
  }

  /**
   * After taking the bound arena's lock over from a thread that died holding it: the arena is
   * rebuilt from its blocks (FastCheck.rebuildArena). The dead thread may have been growing or
   * trimming it, so the top is taken as what the control block says, lowered to the memory that is
   * read-write. (The heaps of ended threads are reclaimed by the next call that looks for them.)
   */
  protected repair(): void {
    const view = this.arenas[this.bound]!;
    let top = view.floats[AF.TOP]!;
    if (!validTop(top, view.reservation.size)) top = 0;
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
    view.provenTop = top;
    this.load(top);
    const held = this.rebuildArena();
    // Cached blocks count as in use in the shared count (see the accounting note in ./shared.ts).
    this.inUse = held;
    this.recountPurged();
    this.dropFreedPending();
    Atomics.add(this.ints, I.REPAIRS, 1);
  }

  /**
   * The bound arena's count of pages given back, from their marks: the dead thread may have been
   * marking or unmarking them. Marks at or past the top (a trim cut short) are cleared.
   */
  private recountPurged(): void {
    const purged = this.purged;
    const below = Math.min(purged.length, this.top >>> this.pageShift);
    let pages = 0;
    for (let p = 0; p < purged.length; p++) {
      if (purged[p] === 0) continue;
      if (p < below) pages++;
      else purged[p] = 0;
    }
    this.purgedBytes = pages << this.pageShift;
  }

  /**
   * Drops every slot's record of a pending block in the bound arena that is not in use: the dead
   * thread had freed it (a reclaimer releasing a dead slot's caches is terminated between the
   * block's release and the clearing of the record). Run before anyone can allocate in the arena
   * again, so a block the record still names is the one that call had in hand, and no one else's.
   */
  private dropFreedPending(): void {
    const bound = this.bound;
    for (let s = 0; s < MAX_OPEN; s++) {
      if (this.slotInts[s * Slot.INTS + Slot.I_PENDING_ARENA] !== bound) continue;
      const h = this.slotFloats[s * Slot.FLOATS + Slot.F_PENDING]!;
      if (h !== 0 && this.pendingSize(h) < 0) this.slotFloats[s * Slot.FLOATS + Slot.F_PENDING] = 0;
    }
  }

  /**
   * The size of block `h` of the bound arena if it can be a pending block (a recorded start, in
   * use or cached, its size agreeing with the next header), else -1.
   */
  protected pendingSize(h: number): number {
    if (!(h > 0 && h < this.top) || !this.isStart(h)) return -1;
    const word = this.mem[(h >>> 2) + Word.SIZE]!;
    const size = word & Flag.SIZE_MASK;
    if (((word & Flag.MASK) !== 0 && (word & Flag.MASK) !== Flag.CACHED) || !this.sizeAgrees(h, size)) return -1;
    return size;
  }

  /**
   * Block `h` of the bound arena is the one a call of this heap's hands out (inside a calloc or
   * realloc, or a move out of its arena: keepPending), until it returns: a reclaim frees it if the
   * thread ends before then.
   */
  protected pending(h: number): void {
    this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = h;
    this.slotInts[this.slot * Slot.INTS + Slot.I_PENDING_ARENA] = this.bound;
  }

  /** Stores the bound arena's state and lets go of its lock, when the outermost call ends; the fields show the home arena again. */
  protected leave(): void {
    if (--this.depth > 0) return;
    const view = this.arenas[this.bound]!;
    const f = view.floats;
    f[AF.TOP] = this.top;
    view.ints[AI.FL_MAP] = this.lists.flMap;
    f[AF.LISTED] = this.lists.count;
    f[AF.BLOCKS] = this.blockCount;
    f[AF.IN_USE] = this.inUse;
    f[AF.MMAP_CALLS] = this.mmapCalls;
    f[AF.MUNMAP_CALLS] = this.munmapCalls;
    f[AF.TRIM_THRESHOLD] = this.trimThreshold;
    f[AF.PURGED] = this.purgedBytes;
    view.seenTop = this.top;
    view.touchedTop = this.touchedTop;
    view.ints[AI.HOLDER] = this.id;
    this.notePeaks();
    if (this.slot >= 0 && !this.keepPending) this.slotFloats[this.slot * Slot.FLOATS + Slot.F_PENDING] = 0;
    release(view.ints, AI.LOCK);
    if (this.bound !== this.home) this.bind(this.home);
  }

  /**
   * Raises the peaks in the control block to what this call saw: the bytes mapped when the arena
   * grew (every arena's top), and this arena's bytes in use (stats() raises it to every arena's
   * and every page's). Nothing of another arena's record is read: each is written at every leave
   * by its own thread, and a read of it here would move its cache line between cores at every call.
   */
  private notePeaks(): void {
    if (this.peakInUse > this.floats[F.PEAK_IN_USE]!) this.floats[F.PEAK_IN_USE] = this.peakInUse;
    if (this.peakMapped > this.floats[F.PEAK_MAPPED]!) this.floats[F.PEAK_MAPPED] = this.peakMapped;
  }

  /**
   * Takes the global lock (the table of heaps, the supply of pages), once per thread however deep
   * the calls. An arena's lock may be held meanwhile; none is taken under it.
   */
  protected lockGlobal(): void {
    // Taken over from a thread that died holding it: a cut of a large block may be half done, and
    // the table's counts may lag its entries.
    if (this.globalDepth++ === 0 && acquire(this.ints, I.LOCK, this.threadId)) this.largeTable.recover();
  }

  protected unlockGlobal(): void {
    if (--this.globalDepth === 0) release(this.ints, I.LOCK);
  }
}

function validTop(top: number, arenaSize: number): boolean {
  return Number.isSafeInteger(top) && top >= 0 && top <= arenaSize && top % getPageSize() === 0;
}

/**
 * The arenas a control block describes, once proved: one range, the arenas of blocks and then the
 * small-object arena (their sizes proved with the layout), mapped in this process, with tops
 * inside them, under a heap still open. The control block is JavaScript memory, out of native
 * code's reach, but a handle can come from anywhere. (That the arenas are read-write up to their
 * tops is proved under the lock, by enter.)
 */
function provenArenas(ints: Int32Array, floats: Float64Array, control: SharedArrayBuffer): Reservation {
  const address = floats[F.ADDRESS]!;
  const size = floats[F.SIZE]!;
  const small = floats[F.SMALL_SIZE]!;
  const smallTop = floats[F.SMALL_TOP]!;
  const fresh = floats[F.SMALL_FRESH]!;
  let tops = true;
  for (let k = 0; k < ARENAS; k++) {
    tops &&= validTop(new Float64Array(control, ARENAS_AT + k * ARENA_RECORD_BYTES, ARENA_RECORD_BYTES >>> 3)[AF.TOP]!, arenaSpan(size, k)[1]);
  }
  if (!tops || floats[F.SMALL_ADDRESS] !== address + size || !validTop(smallTop, small) ||
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
