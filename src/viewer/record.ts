// The record `ffi-heap view` gives the page: a trace replayed against a real heap, and after each
// operation what changed in it, as the events of ./model.ts. A HeapModel kept here in step with
// the heap (the mirror) says what the page will hold; after each operation only the blocks near
// the addresses it touched are read back from the heap (the block before, the block, the two
// after: where a split or merge can reach), and the free list is compared whole (but after an
// operation on small-object pages alone, whose slots are on no list). The heap's own counters then
// prove the mirror: where regions, blocks, bytes in use or cached blocks differ (pages taken or
// given back in batches, a cache merged, a trim), the regions, then the free list's blocks, then
// every block are read back, cheapest first (reconcile).
// `verify` compares the mirror with every block of the heap after every operation, for tests.

import { Heap } from '../heap/presets.js';
import type { FitAlgorithm } from '../strategies/fit.js';
import { OP_ALLOC, OP_FREE, type Trace } from '../trace/format.js';
import { EventWriter, HeapModel, type ModelRegion } from './model.js';

/** One heap the viewer shows: which preset, which fit. */
export interface ViewAllocator {
  readonly preset: 'fast' | 'classic';
  readonly algorithm?: FitAlgorithm;
}

/** What the page gets for one heap. */
export interface HeapRecord {
  readonly label: string;
  readonly preset: 'fast' | 'classic';
  readonly algorithm: FitAlgorithm | null;
  /** The events of every operation (./model.ts). */
  readonly events: Uint8Array;
  /** Operations that returned 0 (out of memory); their events record no change. */
  readonly failed: number;
  /** Times the heap's counters disagreed with the mirror after the blocks near the operation were read back. */
  readonly resyncs: number;
}

/** The label of a heap in the page: "classic, first fit" or "fast". */
export function allocatorLabel(a: ViewAllocator): string {
  return a.preset === 'classic' ? `classic, ${(a.algorithm ?? 'first_fit').replace('_', ' ')}` : a.preset;
}

class Recorder {
  readonly heap: Heap;
  readonly mirror = new HeapModel();
  readonly out = new EventWriter();
  resyncs = 0;
  private readonly real: number[] = [];
  private readonly regionOut: number[] = [];
  private readonly counts: number[] = [];
  private readonly regionList: number[] = [];
  /** The heap's log of free-list changes, where it keeps one (viewFreeLog). */
  private readonly freeLog: number[] | null;

  /** The heap's log of regions that changed off the operation's blocks, where it keeps one (viewRegionLog). */
  private readonly regionLog: number[] | null;

  /** Whether blocks have names to record (the trace gave some). */
  readonly named: boolean;

  constructor(heap: Heap, named: boolean) {
    this.heap = heap;
    this.named = named;
    this.freeLog = heap.viewFreeLog();
    this.regionLog = heap.viewRegionLog();
  }

  /** Reads back each region the heap logged as changed (a page pooled, given back, or taken in a batch). */
  syncLoggedRegions(): void {
    const log = this.regionLog;
    if (log === null || log.length === 0) return;
    for (let k = 0; k < log.length; k++) {
      const a = log[k]!;
      this.syncRegionAt(a);
      const ri = this.mirror.regionIndex(a);
      if (ri >= 0) this.readBack(this.mirror.regions[ri]!.address, this.mirror.regions[ri]!.address + this.mirror.regions[ri]!.size);
    }
    log.length = 0;
  }

  /** [lo, hi): the block holding `a` in the mirror, the one before it and the two after. */
  window(a: number, into: number[]): void {
    const ri = this.mirror.regionIndex(a);
    if (ri < 0) return;
    const r = this.mirror.regions[ri]!;
    const n = r.addrs.length;
    const at = r.lowerBound(a + 1) - 1;
    const lo = at >= 1 ? r.addrs[at - 1]! : r.address;
    const hi = at + 3 < n ? r.addrs[at + 3]! : r.address + r.size;
    into.push(lo, hi);
  }

  /** Reads back the blocks overlapping [lo, hi) and writes them where they differ from the mirror's. */
  readBack(lo: number, hi: number): void {
    const ri = this.mirror.regionIndex(lo);
    if (ri < 0) return;
    const r = this.mirror.regions[ri]!;
    const real = this.real;
    real.length = 0;
    this.heap.viewBlocks(lo, hi, real);
    const n = real.length / 3;
    let from = lo;
    let to = hi;
    if (n > 0) {
      from = Math.min(lo, real[0]!);
      to = Math.max(hi, real[real.length - 3]! + real[real.length - 2]!);
    }
    this.put(r, from, to, real, n);
    if (this.named) this.putNames(real, n);
  }

  /** The names of the `n` blocks of `real`, by a NAME event each where the mirror's differs. */
  private putNames(real: readonly number[], n: number): void {
    const names = this.mirror.names;
    for (let k = 0; k < n; k++) {
      const a = real[3 * k]!;
      const name = this.heap.viewName(a);
      if ((names.get(a) ?? '') === name) continue;
      this.out.name(a, name);
      if (name === '') names.delete(a);
      else names.set(a, name);
    }
  }

  /**
   * The mirror's blocks of `r` that start in [from, to) become the `n` triples of `real`: one
   * event for the blocks between the longest run that matches at the start and the longest at the
   * end, none if all match. (Blocks tile their region, so after a matching run the next block of
   * each starts at the same address.)
   */
  private put(r: ModelRegion, from: number, to: number, real: readonly number[], n: number): void {
    const i = r.lowerBound(from);
    const m = r.lowerBound(to) - i;
    const same = (k: number, j: number): boolean =>
      r.addrs[i + k] === real[3 * j] && r.sizes[i + k] === real[3 * j + 1] && r.states[i + k] === real[3 * j + 2];
    let head = 0;
    while (head < m && head < n && same(head, head)) head++;
    if (head === m && head === n) return;
    let tail = 0;
    while (tail < m - head && tail < n - head && same(m - 1 - tail, n - 1 - tail)) tail++;
    const lo = head === 0 ? from : Math.min(head < n ? real[3 * head]! : Infinity, head < m ? r.addrs[i + head]! : Infinity);
    const hi = tail === 0 ? to : r.addrs[i + m - tail]!;
    this.out.blocks(lo, hi, real, 3 * head, n - head - tail);
    this.mirror.replaceBlocks(lo, hi, real, 3 * head, n - head - tail);
  }

  /** Brings the mirror's region at `a` to what the heap has there: added, resized or gone. */
  syncRegionAt(a: number): void {
    const got = this.regionOut;
    got.length = 0;
    const has = this.heap.viewRegionAt(a, got);
    const m = this.mirror;
    const mi = m.regionIndex(a);
    const mine = mi >= 0 ? m.regions[mi]! : undefined;
    if (!has) {
      if (mine !== undefined) this.setRegion(mine.address, 0, 0);
      return;
    }
    const [address, size, header] = got as [number, number, number];
    if (mine !== undefined && mine.address === address && mine.size === size) return;
    if (mine !== undefined && mine.address !== address) this.setRegion(mine.address, 0, 0);
    this.dropOverlaps(address, size);
    const tail = mine !== undefined && mine.address === address && mine.addrs.length > 0 ? mine.addrs[mine.addrs.length - 1]! : address;
    this.setRegion(address, size, header);
    this.readBack(Math.min(tail, address + size - 1), address + size);
  }

  private setRegion(address: number, size: number, header: number): void {
    this.out.region(address, size, header);
    this.mirror.setRegion(address, size, header);
  }

  /** Removes the mirror's regions that overlap [address, address + size) but do not start there. */
  private dropOverlaps(address: number, size: number): void {
    for (const r of this.mirror.regions.slice()) {
      if (r.address !== address && r.address < address + size && address < r.address + r.size) this.setRegion(r.address, 0, 0);
    }
  }

  /**
   * The free list: FREE events for what changed, found by walking the old and new lists together
   * past their common start and end (an entry only in the old list left, one only in the new list
   * joined; where the common entries changed order, the rest is one replacement). The blocks of
   * every entry that left or joined are read back.
   */
  syncFreeList(): void {
    if (this.freeLog !== null) {
      this.replayFreeLog(this.freeLog);
      return;
    }
    const now: number[] = [];
    this.heap.viewFreeList(now);
    const was = this.mirror.freeList;
    const min = Math.min(was.length, now.length);
    let p = 0;
    while (p < min && was[p] === now[p]) p++;
    if (p === was.length && p === now.length) return;
    let s = 0;
    while (s < min - p && was[was.length - 1 - s] === now[now.length - 1 - s]) s++;
    const oldEnd = was.length - s;
    const newEnd = now.length - s;
    const inOld = new Set<number>();
    const inNew = new Set<number>();
    for (let k = p; k < oldEnd; k++) inOld.add(was[k]!);
    for (let k = p; k < newEnd; k++) inNew.add(now[k]!);
    // i walks the old list, j the new; `at` is where the model's list stands, as events apply.
    let i = p;
    let j = p;
    while (i < oldEnd || j < newEnd) {
      if (i < oldEnd && j < newEnd && was[i] === now[j]) {
        i++;
        j++;
        continue;
      }
      let removed = 0;
      while (i + removed < oldEnd && !inNew.has(was[i + removed]!)) removed++;
      let added = 0;
      while (j + added < newEnd && !inOld.has(now[j + added]!)) added++;
      if (removed === 0 && added === 0) {
        // The common entries changed order: the rest of the span at once.
        removed = oldEnd - i;
        added = newEnd - j;
      }
      this.out.free(j, removed, now, j, added);
      i += removed;
      j += added;
    }
    this.mirror.freeList = now;
    // A block that joined or left the list may have changed state, or size.
    for (const a of inOld) if (!inNew.has(a)) this.readBack(a, a + 1);
    for (const a of inNew) if (!inOld.has(a)) this.readBack(a, a + 1);
  }

  /**
   * The free list from the heap's log of its changes (viewFreeLog): each append or removal as one
   * FREE event. A removal of an address the list does not hold is a log the mirror cannot follow:
   * the list is then read whole.
   */
  private replayFreeLog(log: number[]): void {
    const list = this.mirror.freeList;
    for (let k = 0; k < log.length; k++) {
      const a = log[k]!;
      if (a > 0) {
        this.out.free(list.length, 0, log, k, 1);
        list.push(a);
        this.readBack(a, a + 1);
        continue;
      }
      const at = list.indexOf(-a);
      if (at < 0) {
        log.length = 0;
        const now: number[] = [];
        this.heap.viewFreeList(now);
        this.out.free(0, list.length, now, 0, now.length);
        this.mirror.freeList = now;
        return;
      }
      this.out.free(at, 1, log, k, 0);
      list.splice(at, 1);
      this.readBack(-a, 1 - a);
    }
    log.length = 0;
  }

  /** Whether address `a` is 0 or in a region whose blocks have no header: a page of small blocks or a large block's mapping, neither on a free list. */
  onPage(a: number): boolean {
    if (a === 0) return true;
    const ri = this.mirror.regionIndex(a);
    return ri >= 0 && this.mirror.regions[ri]!.header === 0;
  }

  /** Whether the heap's counters agree with the mirror's. */
  agrees(): boolean {
    const c = this.counts;
    c.length = 0;
    this.heap.viewCounts(c);
    const m = this.mirror;
    return c[0] === m.regions.length && c[1] === m.blocks && c[2] === m.usedBytes && c[4] === m.regionBytes &&
      this.heap.viewCached() === m.cached;
  }

  /** Bytes mapped, as the heap counted them at the last agrees(). */
  get mapped(): number {
    return this.counts[3]!;
  }

  /**
   * Brings the mirror to the heap where the counters disagree, cheapest first: the list of regions
   * (pages taken in batches, a page given to the pool: only regions added, resized or holding
   * another count of blocks are read); then every
   * block on the free list (a cache merged in place); then every block of every region.
   */
  reconcile(): boolean {
    if (this.agrees()) return false;
    this.resyncs++;
    this.syncRegions(false);
    this.syncFreeList();
    if (this.agrees()) return true;
    for (const a of this.mirror.freeList) this.readBack(a, a + 1);
    if (this.agrees()) return true;
    this.syncRegions(true);
    this.agrees();
    return true;
  }

  /** Reads the list of regions back; with `all`, every block of every region too, else only those of regions that changed. */
  private syncRegions(all: boolean): void {
    const regs = this.regionList;
    regs.length = 0;
    this.heap.viewRegions(regs);
    // The mirror's regions the heap no longer has: both lists are in address order.
    const gone: number[] = [];
    const rs = this.mirror.regions;
    for (let i = 0, k = 0; i < rs.length; i++) {
      while (k < regs.length && regs[k]! < rs[i]!.address) k += 4;
      if (k >= regs.length || regs[k] !== rs[i]!.address) gone.push(rs[i]!.address);
    }
    for (const address of gone) this.setRegion(address, 0, 0);
    for (let k = 0; k < regs.length; k += 4) {
      const address = regs[k]!;
      const size = regs[k + 1]!;
      const header = regs[k + 2]!;
      const blocks = regs[k + 3]!;
      const mi = this.mirror.regionIndex(address);
      const mine = mi >= 0 ? this.mirror.regions[mi] : undefined;
      const changed = mine === undefined || mine.address !== address || mine.size !== size || mine.header !== header;
      // A region whose count of blocks changed (a page given to the pool) is read back too.
      const recount = blocks >= 0 && mine !== undefined && mine.addrs.length !== blocks;
      if (changed) {
        this.dropOverlaps(address, size);
        this.setRegion(address, size, header);
      }
      if (changed || recount || all) this.readBack(address, address + size);
    }
  }

  /** Throws when the mirror differs from the heap anywhere (the `verify` option). */
  verify(op: number): void {
    const regs: number[] = [];
    this.heap.viewRegions(regs);
    const m = this.mirror;
    const fail = (what: string): never => {
      throw new Error(`view record: after operation ${op} the mirror differs from the heap: ${what}`);
    };
    if (m.regions.length !== regs.length / 4) fail(`${m.regions.length} regions, the heap has ${regs.length / 4}`);
    const real: number[] = [];
    m.regions.forEach((r, i) => {
      if (r.address !== regs[4 * i] || r.size !== regs[4 * i + 1]) fail(`region ${i} is ${r.address}+${r.size}, the heap's ${regs[4 * i]}+${regs[4 * i + 1]}`);
      if (regs[4 * i + 3]! >= 0 && regs[4 * i + 3] !== r.addrs.length) fail(`region ${i} holds ${r.addrs.length} blocks, the heap counts ${regs[4 * i + 3]}`);
      real.length = 0;
      this.heap.viewBlocks(r.address, r.address + r.size, real);
      if (real.length !== 3 * r.addrs.length) fail(`region ${r.address.toString(16)} holds ${r.addrs.length} blocks, the heap's ${real.length / 3}`);
      for (let k = 0; k < r.addrs.length; k++) {
        if (r.addrs[k] !== real[3 * k] || r.sizes[k] !== real[3 * k + 1] || r.states[k] !== real[3 * k + 2]) {
          fail(`block ${r.addrs[k]!.toString(16)} (${r.sizes[k]} bytes, state ${r.states[k]}) is ${real[3 * k]!.toString(16)} (${real[3 * k + 1]} bytes, state ${real[3 * k + 2]})`);
        }
        if (this.named && (m.names.get(r.addrs[k]!) ?? '') !== this.heap.viewName(r.addrs[k]!)) fail(`block ${r.addrs[k]!.toString(16)}'s name`);
      }
    });
    const list: number[] = [];
    this.heap.viewFreeList(list);
    if (list.length !== m.freeList.length || list.some((a, i) => a !== m.freeList[i])) fail('the free list');
  }
}

/** What recordHeap does besides recording, for tests. */
export interface RecordOptions {
  /** Compare the mirror with every block of the heap after every operation (slow). */
  readonly verify?: boolean;
  /** Called with the heap after each operation (its index from 0). */
  readonly observe?: (op: number, heap: Heap) => void;
}

/** Replays `trace` against a new heap of `allocator` and records what changed at each operation. */
export function recordHeap(trace: Trace, allocator: ViewAllocator, options: RecordOptions = {}): HeapRecord {
  const { verify = false, observe } = options;
  const heap = new Heap({ preset: allocator.preset, algorithm: allocator.algorithm ?? 'first_fit' });
  const rec = new Recorder(heap, trace.names !== undefined);
  const ptrs = new Float64Array(trace.idCount);
  const windows: number[] = [];
  let failed = 0;
  try {
    for (let i = 0; i < trace.kinds.length; i++) {
      const kind = trace.kinds[i]!;
      const id = trace.ids[i]!;
      const p = kind === OP_ALLOC ? 0 : ptrs[id]!;
      windows.length = 0;
      if (p !== 0) rec.window(p, windows);
      let q = 0;
      const name = trace.names?.get(i);
      if (kind === OP_ALLOC) q = heap.malloc(trace.sizes[i]!, name);
      else if (kind === OP_FREE) heap.free(p);
      else q = heap.realloc(p, trace.sizes[i]!, name);
      if (kind !== OP_FREE && q === 0) failed++;
      ptrs[id] = kind === OP_FREE ? 0 : q === 0 ? p : q;
      if (p !== 0) rec.syncRegionAt(p);
      if (q !== 0) rec.syncRegionAt(q);
      for (let k = 0; k < windows.length; k += 2) rec.readBack(windows[k]!, windows[k + 1]!);
      if (q !== 0) {
        windows.length = 0;
        rec.window(q, windows);
        if (windows.length === 2) rec.readBack(windows[0]!, windows[1]!);
      }
      rec.syncLoggedRegions();
      // Blocks of pages (no header) are on no free list: an operation on them alone, with the
      // counters agreeing, leaves the lists as they were.
      if (!rec.reconcile() && !(rec.onPage(p) && rec.onPage(q))) rec.syncFreeList();
      if (verify) rec.verify(i);
      observe?.(i, heap);
      rec.out.end(q, rec.mapped);
    }
  } finally {
    heap.destroy();
  }
  return {
    label: allocatorLabel(allocator),
    preset: allocator.preset,
    algorithm: allocator.preset === 'classic' ? allocator.algorithm ?? 'first_fit' : null,
    events: rec.out.take(),
    failed,
    resyncs: rec.resyncs,
  };
}
