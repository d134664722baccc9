// The shared preset's control block: the SharedArrayBuffer a handle carries, its layout, its lock,
// and its table of the threads that have the heap open. Everything here lives in JavaScript
// memory, out of native code's reach; the blocks themselves are in the arena.
//
// The lock can be held by a thread that is then stopped for good (worker.terminate() arrives at
// any instruction). So its word names its holder, a thread id (src/os/threads.ts); a thread that
// waits on it wakes every WAIT_MS to ask whether that thread still runs, and takes the lock over
// from a dead one. Whoever takes a lock over must repair what the dead holder left half done:
// acquire() says when it did.
//
// The thread table has one slot per heap open over the arena: the thread that opened it (id and
// start time, so that a recycled thread id is not mistaken for it), and that heap's small-block
// caches, kept here rather than in the heap object so that another thread can give them back when
// the owner is gone. A slot is claimed with a compare-and-swap of its id from 0; a heap whose
// thread has ended is reclaimed by the next thread to look (SharedSlots.reclaimDeadSlots, in
// ./shared-slots.ts). After them come the parts sized by the arenas (ControlLayout): the facts of
// every small-object page (./shared-pages.ts), the supply's stack (./shared-supply.ts), and the
// arena's start bitmap.

import { FL_COUNT, SL_COUNT } from '../strategies/tlsf.js';
import { CACHE_CLASSES } from './fast.js';
import { threadAlive } from '../os/threads.js';
import { LARGE_TABLE_BYTES } from './shared-large-entries.js';

export const MAGIC = 0x66666875;

/** Int32 slots at the block's start. */
export const enum I {
  MAGIC = 0,
  /**
   * The global lock, over the table of heaps and the supply of small-object pages (each arena of
   * blocks has a lock of its own, in its record). 0 when free, else the holder's thread id, with
   * Lock.WAITERS set when others may be waiting. A thread holding an arena's lock may take this
   * one; a thread holding this one takes no arena's lock, so no two threads wait on each other.
   */
  LOCK = 1,
  /** Releases that may have had waiters, counted: the word waiters sleep on (see acquire). */
  LOCK_WAKES = 2,
  DESTROYED = 3,
  /** The last number handed to a heap over the arena. */
  HEAPS = 6,
  /** Heaps whose threads ended without closing them, and whose slots and caches were taken back. */
  RECLAIMED = 7,
  /** Times an arena was rebuilt after a thread died holding its lock. */
  REPAIRS = 8,
  /** Small-object pages in the shared supply (its stack: ControlLayout.stackAt), given back by heaps. */
  FREE_PAGES = 9,
  /** Heaps open over the arena: slots claimed and not yet closed or reclaimed. */
  OPEN = 10,
  /** Entries of the large-block table ever used (./shared-large.ts): those past it are empty. */
  LARGE_TOP = 11,
  /** Where the large-block table's ring of unmapped blocks takes its next address. */
  LARGE_RELEASED = 12,
  COUNT = 16,
}

/** Float64 slots after them. */
export const enum F {
  /** The arenas of blocks: where the first begins, and all of their bytes. */
  ADDRESS = 0,
  SIZE = 1,
  /** The most in use and mapped that a call under a lock, or stats(), has seen. */
  PEAK_IN_USE = 5,
  PEAK_MAPPED = 6,
  /** Kernel calls made for the reservation and the small-object arena (each arena counts its own). */
  MMAP_CALLS = 7,
  MUNMAP_CALLS = 8,
  /** The small-object arena: its address and size, the bytes committed from its start, and where its never-used pages begin. */
  SMALL_ADDRESS = 11,
  SMALL_SIZE = 12,
  SMALL_TOP = 13,
  SMALL_FRESH = 14,
  /** Bytes of pages in the supply whose memory went back to the kernel (classes Page.GIVEN_BACK). */
  SMALL_GIVEN_BACK = 15,
  /** When a heap last looked for ended threads (Date.now(): every thread's clock). */
  LAST_RECLAIM = 16,
  /** The large-block table (./shared-large.ts): the last serial it gave a block, its live bytes and blocks. */
  LARGE_SERIAL = 17,
  LARGE_BYTES = 18,
  LARGE_BLOCKS = 19,
  /** A cut of a large block in progress (./shared-large.ts, cut): the block's address (0: none), its new size (0: freed), the heap cutting it. */
  LARGE_CUT_AT = 20,
  LARGE_CUT_TO = 21,
  LARGE_CUT_HEAP = 22,
  COUNT = 24,
}

/**
 * The arenas of blocks: arena 0, the main arena, holds most of the bytes, and the rest is cut into
 * THREAD_ARENAS equal thread arenas (see arenaSpan). Each heap has a home among the thread arenas (the one with
 * fewest heaps at home when it attaches): its blocks come from there, under a lock that no other
 * thread takes but to free, resize or read one of them. A request the home cannot hold goes to
 * the main arena.
 */
export const THREAD_ARENAS = 8;
export const ARENAS = THREAD_ARENAS + 1;
/** Each arena's record: its lock and state, as Int32 (AI) and, from byte 64, Float64 (AF). */
export const ARENA_RECORD_BYTES = 128;
export const enum AI {
  /** The arena's lock and the word its waiters sleep on (as I.LOCK and I.LOCK_WAKES). */
  LOCK = 0,
  LOCK_WAKES = 1,
  /** The heap (by number) that last let go of the lock: if it is this one, its fields are current. */
  HOLDER = 2,
  FL_MAP = 3,
  /** Heaps whose home this arena is. */
  HOMES = 4,
}
export const enum AF {
  TOP = 8,
  BLOCKS = 9,
  IN_USE = 10,
  MMAP_CALLS = 11,
  MUNMAP_CALLS = 12,
  TRIM_THRESHOLD = 13,
  LISTED = 14,
  /** Bytes of the arena's pages given back inside its free blocks (FastArena.purgedBytes). */
  PURGED = 15,
}

/**
 * Where arena `k` begins among the arenas of blocks (of `size` bytes in all), and its size. The
 * thread arenas take a quarter of the bytes of a whole reservation (32 MiB each), a sixteenth of
 * a smaller one (the kernel refused the whole), so that the main arena keeps nearly the room for
 * large blocks that the one arena had before there were thread arenas.
 */
export function arenaSpan(size: number, k: number): [offset: number, bytes: number] {
  const unit = 64 * 1024;
  const each = Math.floor(size / (size >= 2 ** 30 ? 4 : 16) / THREAD_ARENAS / unit) * unit;
  const main = size - each * THREAD_ARENAS;
  return k === 0 ? [0, main] : [main + (k - 1) * each, each];
}

/** How many heaps may be open over one arena at once (one slot each). */
export const MAX_OPEN = 1024;
/** Size classes of the small-block caches (block size / 16), as FastArena's cacheHeads. */
export { CACHE_CLASSES };

export const ARENAS_AT = 4 * I.COUNT + 8 * F.COUNT;
/** Each arena's free-list heads (u32) and second-level bitmaps (i32), each on cache lines of its own. */
export const HEADS_BYTES = align64(4 * FL_COUNT * SL_COUNT);
export const SL_MAPS_BYTES = align64(4 * FL_COUNT);
export const HEADS_AT = ARENAS_AT + ARENA_RECORD_BYTES * ARENAS;
export const SL_MAPS_AT = HEADS_AT + HEADS_BYTES * ARENAS;
/**
 * Per slot, one 64-byte record (so that two threads' counters never share a cache line): as
 * Float64 at record index 1 its thread's start time, 2 the block a call in progress is handing out
 * (its header's offset; see SharedHeap.repair); as Int32 at 7 its thread's id (0 when the slot is
 * free, SLOT_ORPHAN, or a reclaimer's mark while it is reclaimed), at 8 the head of its list of
 * pages with remote frees, at 9 its home arena, at 10 the arena of the block at 2. (What its
 * caches hold is read from their counts: see SharedSlots.cachedIn.)
 */
export const SLOTS_AT = SL_MAPS_AT + SL_MAPS_BYTES * ARENAS;
export const enum Slot {
  BYTES = 64,
  FLOATS = 8,
  INTS = 16,
  F_START = 1,
  F_PENDING = 2,
  I_THREAD = 7,
  /** The first of the pages (of this slot's heap) where other threads freed slots; see shared-pages.ts. */
  I_REMOTE_PAGES = 8,
  /** The slot's home arena, whose blocks its caches hold. */
  I_HOME = 9,
  /**
   * The arena of the block at F_PENDING (Int32 indexes below 6 lie under the Float64 ones), or
   * PENDING_LARGE or PENDING_SLOT when F_PENDING is a large block's or a page slot's address.
   */
  I_PENDING_ARENA = 10,
}
/** Slot.I_PENDING_ARENA of a large block: written before its address, so that no address is taken for an arena's offset. */
export const PENDING_LARGE = -1;
/**
 * Slot.I_PENDING_ARENA of a slot of the small-object pages: written before its address, and both
 * before the slot's mark says it is in use (SharedHeap.mallocForMove).
 */
export const PENDING_SLOT = -3;
/** A slot's thread id while its heap is closed but still owns pages with slots in use: the next reclaim adopts them. */
export const SLOT_ORPHAN = -2;
/**
 * A slot's thread word while a heap reclaims it: the reclaiming thread's id, and whether it is
 * adopting a closed heap's pages or taking back an ended thread's blocks, so that a reclaimer
 * terminated in the middle leaves the slot to the next (reclaimerOf).
 */
export function reclaimMark(id: number, adopting: boolean): number {
  return -(RECLAIM_MARK + (id < UNNAMED ? id : UNNAMED) + (adopting ? ADOPTING : 0));
}
/** The reclaimer's id in a slot's thread word, or -1 when the word is no reclaimer's mark. */
export function reclaimerOf(word: number): number {
  if (word > -RECLAIM_MARK) return -1;
  const x = -word - RECLAIM_MARK;
  return x >= ADOPTING ? x - ADOPTING : x;
}
/** Whether a reclaimer's mark (reclaimerOf(word) >= 0) says it was adopting a closed heap's pages. */
export function markAdopting(word: number): boolean {
  return -word - RECLAIM_MARK >= ADOPTING;
}
const RECLAIM_MARK = 8;
/** Past every id a mark holds (ids from UNNAMED, 1 << 22, up count as UNNAMED). */
const ADOPTING = 1 << 23;
/**
 * Per slot, its caches: per class, the first block (u32) and how many it holds (i32), each array
 * padded to whole cache lines.
 */
export const CACHE_STRIDE = align64(4 * CACHE_CLASSES);
export const CACHE_HEADS_AT = SLOTS_AT + Slot.BYTES * MAX_OPEN;
export const CACHE_COUNTS_AT = CACHE_HEADS_AT + CACHE_STRIDE * MAX_OPEN;
/** The largest small-object arena a shared heap reserves (a quarter of its arena's size, at most this). */
export const SMALL_ARENA_BYTES = 256 * 1024 * 1024;
/** The control block's fixed part: everything above. */
export const FIXED_BYTES = CACHE_COUNTS_AT + CACHE_STRIDE * MAX_OPEN;

/** The page size the purged marks are laid out for: the smallest Linux has (a larger page uses the first of its marks). */
export const PURGED_PAGE = 4096;

/**
 * Where the parts sized by the arenas lie in a control block for an arena of `arenaBytes` and a
 * small-object arena of `smallBytes`. Per small page: its mark per granule (i8, SmallPages.marks),
 * its class (i32: see SharedSmallPages.classes), the tag of the heap that owns it (i32: slot + 1, 0 for
 * none), how many of its slots other threads freed that its owner has not taken back (i32), and
 * the next page on its owner's list of such pages (i32); then the supply's stack of pages heaps
 * gave back (i32 each); then the arena's start bitmap, one bit per 16 bytes; then a byte per page
 * of the arenas, set where the page lies inside a free block and was given back to the kernel
 * (FastArena.purged); then the table of large blocks (./shared-large.ts).
 */
export class ControlLayout {
  readonly smallPages: number;
  readonly marksAt: number;
  readonly classesAt: number;
  readonly ownersAt: number;
  readonly remoteAt: number;
  readonly nextAt: number;
  readonly stackAt: number;
  readonly startsAt: number;
  /** The arenas' marks of pages given back to the kernel (FastArena.purged): a byte per 4 KiB of the arenas. */
  readonly purgedAt: number;
  readonly largeAt: number;
  /** The control block's size. */
  readonly bytes: number;

  constructor(arenaBytes: number, smallBytes: number) {
    this.smallPages = smallBytes / 1024;
    this.marksAt = FIXED_BYTES;
    this.classesAt = this.marksAt + this.smallPages * 64;
    this.ownersAt = this.classesAt + 4 * this.smallPages;
    this.remoteAt = this.ownersAt + 4 * this.smallPages;
    this.nextAt = this.remoteAt + 4 * this.smallPages;
    this.stackAt = this.nextAt + 4 * this.smallPages;
    this.startsAt = this.stackAt + 4 * this.smallPages;
    this.purgedAt = align64(this.startsAt + arenaBytes / 128);
    this.largeAt = align64(this.purgedAt + arenaBytes / PURGED_PAGE);
    this.bytes = this.largeAt + LARGE_TABLE_BYTES;
  }
}

function align64(n: number): number {
  return (n + 63) & ~63;
}

export const enum Lock {
  WAITERS = 1 << 30,
  HOLDER_MASK = (1 << 30) - 1,
}

/**
 * Spins this many times on a held lock before it sleeps (some 30 to 70 µs in Node 20, where each
 * Atomics.load is a call): a holder on another core lets go within that, and a sleep and its wake
 * cost more. With 64 spins, some runs of two workers contending for the arena fell to a fifth of
 * one worker's throughput, sleeping at almost every acquire.
 */
const SPINS = 2000;
/** A waiter wakes this often to ask whether the holder's thread still runs. */
const WAIT_MS = 25;

/**
 * Takes the lock at `ints[at]` for thread `me` (an id from threadId, never 0). Returns false, or
 * true when it took the lock over from a thread that died holding it: then whatever that thread
 * was changing is the caller's to repair before it trusts it. Never waits on a dead thread, and
 * never sleeps past WAIT_MS at a time, so a thread waiting here can itself be terminated.
 *
 * Waiters sleep on the word after the lock's (`ints[at + 1]`), which only a release that may have
 * waiters changes: the lock's own word changes with every holder, and a waiter sleeping on it
 * would wake each time another thread took the lock instead of it.
 */
export function acquire(ints: Int32Array, at: number, me: number): boolean {
  if (Atomics.compareExchange(ints, at, 0, me) === 0) return false;
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(ints, at) === 0 && Atomics.compareExchange(ints, at, 0, me) === 0) return false;
  }
  for (;;) {
    // Read before the lock is looked at: a release after this read changes it, and the wait below returns.
    const wakes = Atomics.load(ints, at + 1);
    const held = Atomics.load(ints, at);
    if (held === 0) {
      // Others may still wait: whoever takes it from here wakes one when it lets go.
      if (Atomics.compareExchange(ints, at, 0, me | Lock.WAITERS) === 0) return false;
      continue;
    }
    if ((held & Lock.WAITERS) === 0 && Atomics.compareExchange(ints, at, held, held | Lock.WAITERS) !== held) continue;
    if (Atomics.wait(ints, at + 1, wakes, WAIT_MS) === 'timed-out' && threadGone(held & Lock.HOLDER_MASK, 0)) {
      // Of the threads that find it dead, one takes the lock over: the word changes for the others.
      const now = held | Lock.WAITERS;
      if (Atomics.compareExchange(ints, at, now, me | Lock.WAITERS) === now) return true;
    }
  }
}

/** Lets go of the lock at `ints[at]`, and wakes one waiter if any may wait. */
export function release(ints: Int32Array, at: number): void {
  if ((Atomics.exchange(ints, at, 0) & Lock.WAITERS) !== 0) {
    Atomics.add(ints, at + 1, 1);
    Atomics.notify(ints, at + 1, 1);
  }
}

/** Thread ids run below 2^22 (the kernel's PID_MAX_LIMIT); ids from here up name a thread /proc could not. */
const UNNAMED = 1 << 22;

/**
 * The id a thread goes by in the control block: its kernel thread id, or, where /proc could not
 * say (`tid` undefined), an id past any thread id, which threadAlive counts as alive for good.
 */
export function threadId(tid: number | undefined, heapNumber: number): number {
  return tid !== undefined && tid > 0 && tid < UNNAMED ? tid : UNNAMED + (heapNumber % (Lock.HOLDER_MASK - UNNAMED));
}

/** Whether the thread that holds slot id `id`, started at `start`, has ended (see threadAlive). */
export function threadGone(id: number, start: number): boolean {
  return id > 0 && id < UNNAMED && !threadAlive(id, start);
}
