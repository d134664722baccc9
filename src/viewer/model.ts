// The heap viewer's record format and the model it rebuilds: written once, run twice. `ffi-heap
// view` (./record.ts) keeps a HeapModel in step with the real heap as it replays a trace and writes
// what changed at each operation as events; the page (./page.ts) reads the same events into its
// own HeapModel to rebuild the heap at any operation. This file imports nothing, so the page
// carries its compiled text as it is.
//
// The record of one heap is a byte string: for each operation of the trace, its events, then END.
// Numbers are unsigned LEB128 varints (up to 2^53); addresses are written as the zigzag-coded
// difference from the address written last, so neighbouring blocks cost a byte or two.
//
//   END     result mapped         the operation's returned address (0 for a free) and the bytes
//                                 the heap holds from the kernel after it (both as differences
//                                 from the previous END's)
//   REGION  address size header   the region at `address` now spans `size` bytes (0: it is gone),
//                                 its blocks' headers `header` bytes; blocks past a new end go
//   BLOCKS  lo span n (address size state)×n
//                                 the blocks of the region holding `lo` that start in
//                                 [lo, lo + span) are replaced by these n
//   FREE    at removed n (address)×n
//                                 the free list loses `removed` entries at index `at`, and gains
//                                 these n there
//   NAME    address length utf8   the block at `address` is named so (length 0: no name); only in
//                                 records of traces with names, after the BLOCKS that made it
//
// Invariants of a HeapModel: regions are sorted by address and do not overlap; a region's blocks
// are sorted by address, each inside the region; the free list holds addresses in the heap's order.

export const EV_END = 0;
export const EV_REGION = 1;
export const EV_BLOCKS = 2;
export const EV_FREE = 3;
export const EV_NAME = 4;

/** Block states, as the heap reports them (VIEW_USED, VIEW_FREE, VIEW_CACHED in ../heap/heap.ts). */
export const STATE_USED = 0;
export const STATE_FREE = 1;
export const STATE_CACHED = 2;

/** Replaces `removed` entries of `a` at `at` with `items` (spread arguments have a limit; this has none). */
export function splice(a: number[], at: number, removed: number, items: readonly number[]): void {
  const n = items.length;
  if (n + removed < 10_000) {
    a.splice(at, removed, ...items);
    return;
  }
  const tail = a.slice(at + removed);
  a.length = at;
  for (let k = 0; k < n; k++) a.push(items[k]!);
  for (let k = 0; k < tail.length; k++) a.push(tail[k]!);
}

/** One region of a HeapModel and its blocks, as three parallel arrays in address order. */
export class ModelRegion {
  address: number;
  size: number;
  header: number;
  /** Regions are numbered as they appear: snapshot() lists them in that order. */
  seq = 0;
  addrs: number[] = [];
  sizes: number[] = [];
  states: number[] = [];

  constructor(address: number, size: number, header: number) {
    this.address = address;
    this.size = size;
    this.header = header;
  }

  /** The index of the first block that starts at or after `address`. */
  lowerBound(address: number): number {
    const a = this.addrs;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! < address) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The index of the block whose bytes hold `address`, or -1. */
  blockAt(address: number): number {
    const i = this.lowerBound(address + 1) - 1;
    return i >= 0 && address < this.addrs[i]! + this.sizes[i]! ? i : -1;
  }

  clone(): ModelRegion {
    const r = new ModelRegion(this.address, this.size, this.header);
    r.seq = this.seq;
    r.addrs = this.addrs.slice();
    r.sizes = this.sizes.slice();
    r.states = this.states.slice();
    return r;
  }
}

/** The heap at one operation: its regions and blocks, its free list, its footprint. */
export class HeapModel {
  regions: ModelRegion[] = [];
  freeList: number[] = [];
  /** Bytes held from the kernel. */
  mapped = 0;
  /** What the last operation returned (0 for a free). */
  result = 0;
  /** Blocks in every region, those in use, and their bytes: kept as blocks are replaced. */
  blocks = 0;
  used = 0;
  usedBytes = 0;
  cached = 0;
  /** The seq of the next region to appear. */
  nextSeq = 0;
  /** The bytes of every region. */
  regionBytes = 0;
  /** Block names, by block address (only blocks that have one). */
  names = new Map<number, string>();

  clone(): HeapModel {
    const m = new HeapModel();
    m.regions = this.regions.map((r) => r.clone());
    m.freeList = this.freeList.slice();
    m.mapped = this.mapped;
    m.result = this.result;
    m.blocks = this.blocks;
    m.used = this.used;
    m.usedBytes = this.usedBytes;
    m.cached = this.cached;
    m.nextSeq = this.nextSeq;
    m.regionBytes = this.regionBytes;
    m.names = new Map(this.names);
    return m;
  }

  /** The index of the region holding `address`, or -1. */
  regionIndex(address: number): number {
    const rs = this.regions;
    let lo = 0;
    let hi = rs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (rs[mid]!.address <= address) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    return i >= 0 && address < rs[i]!.address + rs[i]!.size ? i : -1;
  }

  /** The region at exactly `address` now spans `size` bytes (0: removed), or is added. */
  setRegion(address: number, size: number, header: number): void {
    const rs = this.regions;
    let i = 0;
    while (i < rs.length && rs[i]!.address < address) i++;
    const r = rs[i];
    if (r !== undefined && r.address === address) {
      const keep = size === 0 ? 0 : r.lowerBound(address + size);
      this.count(r, keep, r.addrs.length, -1);
      this.regionBytes += size - r.size;
      if (size === 0) {
        rs.splice(i, 1);
        return;
      }
      r.size = size;
      r.header = header;
      r.addrs.length = keep;
      r.sizes.length = keep;
      r.states.length = keep;
    } else if (size !== 0) {
      this.regionBytes += size;
      const added = new ModelRegion(address, size, header);
      added.seq = this.nextSeq++;
      rs.splice(i, 0, added);
    }
  }

  /** The blocks of the region holding `lo` that start in [lo, hi) become the `n` blocks given (triples from `at`). */
  replaceBlocks(lo: number, hi: number, triples: readonly number[], at: number, n: number): void {
    const ri = this.regionIndex(lo);
    if (ri < 0) throw new Error(`view record: no region holds ${lo.toString(16)}`);
    const r = this.regions[ri]!;
    const from = r.lowerBound(lo);
    const to = r.lowerBound(hi);
    this.count(r, from, to, -1);
    const addrs: number[] = new Array(n);
    const sizes: number[] = new Array(n);
    const states: number[] = new Array(n);
    for (let k = 0; k < n; k++) {
      addrs[k] = triples[at + 3 * k]!;
      sizes[k] = triples[at + 3 * k + 1]!;
      states[k] = triples[at + 3 * k + 2]!;
    }
    splice(r.addrs, from, to - from, addrs);
    splice(r.sizes, from, to - from, sizes);
    splice(r.states, from, to - from, states);
    this.count(r, from, from + n, 1);
  }

  /** Adds (sign 1) or takes away (-1) blocks `from` to `to` of `r` in the counts. */
  private count(r: ModelRegion, from: number, to: number, sign: number): void {
    this.blocks += sign * (to - from);
    for (let i = from; i < to; i++) {
      if (sign < 0 && this.names.size > 0) this.names.delete(r.addrs[i]!);
      const state = r.states[i];
      if (state === STATE_USED) {
        this.used += sign;
        this.usedBytes += sign * r.sizes[i]!;
      } else if (state === STATE_CACHED) {
        this.cached += sign;
      }
    }
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes events (in ./record.ts). */
export class EventWriter {
  bytes = new Uint8Array(1 << 16);
  length = 0;
  private last = 0;
  private lastResult = 0;
  private lastMapped = 0;

  private room(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  uint(n: number): void {
    this.room(8);
    while (n >= 128) {
      this.bytes[this.length++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.bytes[this.length++] = n;
  }

  /** A signed difference, zigzag-coded. */
  int(d: number): void {
    this.uint(d < 0 ? -2 * d - 1 : 2 * d);
  }

  address(a: number): void {
    this.int(a - this.last);
    this.last = a;
  }

  end(result: number, mapped: number): void {
    this.uint(EV_END);
    this.int(result - this.lastResult);
    this.int(mapped - this.lastMapped);
    this.lastResult = result;
    this.lastMapped = mapped;
  }

  region(address: number, size: number, header: number): void {
    this.uint(EV_REGION);
    this.address(address);
    this.uint(size);
    this.uint(header);
  }

  blocks(lo: number, hi: number, triples: readonly number[], at: number, n: number): void {
    this.uint(EV_BLOCKS);
    this.address(lo);
    this.uint(hi - lo);
    this.uint(n);
    for (let k = 0; k < n; k++) {
      this.address(triples[at + 3 * k]!);
      this.uint(triples[at + 3 * k + 1]!);
      this.uint(triples[at + 3 * k + 2]!);
    }
  }

  free(at: number, removed: number, addrs: readonly number[], from: number, n: number): void {
    this.uint(EV_FREE);
    this.uint(at);
    this.uint(removed);
    this.uint(n);
    for (let k = 0; k < n; k++) this.address(addrs[from + k]!);
  }

  name(address: number, name: string): void {
    const bytes = encoder.encode(name);
    this.uint(EV_NAME);
    this.address(address);
    this.uint(bytes.length);
    this.room(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  take(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/** Reads events and applies them to a HeapModel, one operation at a time. */
export class EventReader {
  readonly bytes: Uint8Array;
  pos = 0;
  private last = 0;
  private readonly scratch: number[] = [];

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Where the reader is, to come back to with seek(): [byte position, last address]. */
  mark(): [number, number] {
    return [this.pos, this.last];
  }

  seek(pos: number, last: number): void {
    this.pos = pos;
    this.last = last;
  }

  uint(): number {
    const b = this.bytes;
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= b.length) throw new Error('view record: it ends inside an operation');
      const byte = b[this.pos++]!;
      n += (byte & 127) * scale;
      if (byte < 128) return n;
      scale *= 128;
    }
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }

  address(): number {
    this.last += this.int();
    return this.last;
  }

  /** Applies the next operation's events to `m`. */
  applyOp(m: HeapModel): void {
    for (;;) {
      const tag = this.uint();
      if (tag === EV_END) {
        m.result += this.int();
        m.mapped += this.int();
        return;
      }
      if (tag === EV_REGION) {
        const address = this.address();
        const size = this.uint();
        m.setRegion(address, size, this.uint());
      } else if (tag === EV_BLOCKS) {
        const lo = this.address();
        const hi = lo + this.uint();
        const n = this.uint();
        const t = this.scratch;
        t.length = 3 * n;
        for (let k = 0; k < n; k++) {
          t[3 * k] = this.address();
          t[3 * k + 1] = this.uint();
          t[3 * k + 2] = this.uint();
        }
        m.replaceBlocks(lo, hi, t, 0, n);
      } else if (tag === EV_FREE) {
        const at = this.uint();
        const removed = this.uint();
        const n = this.uint();
        const added: number[] = new Array(n);
        for (let k = 0; k < n; k++) added[k] = this.address();
        splice(m.freeList, at, removed, added);
      } else if (tag === EV_NAME) {
        const address = this.address();
        const n = this.uint();
        if (this.pos + n > this.bytes.length) throw new Error('view record: it ends inside a name');
        const name = decoder.decode(this.bytes.subarray(this.pos, this.pos + n));
        this.pos += n;
        if (name === '') m.names.delete(address);
        else m.names.set(address, name);
      } else {
        throw new Error(`view record: unknown event ${tag} at byte ${this.pos - 1}`);
      }
    }
  }
}
