// Recording (`record: true`): a heap of any preset (debug mode included, not shared) wrapped so
// that every malloc, calloc, realloc and free the program makes, through any helper (cstring,
// alloc, scopes, arenas, autoFree), is kept as a malloc-lab trace: `heap.recorded()` gives its
// text, which `ffi-heap replay` replays against any allocator. Being a separate class, it costs
// heaps made without it nothing.
//
// Ids: each block gets the next id when it is allocated and keeps it through every realloc,
// moved or not; a failed request (0 returned) and free(0) are not requests of the trace. calloc
// is an allocation of count * size bytes; realloc(0, n) an allocation; realloc(p, 0) a free.

import { Heap, type HeapOperations } from '../heap/heap.js';
import { destroyedError } from '../heap/errors.js';
import { callocBytes, toAddress } from '../heap/arguments.js';
import type { ResolvedOptions } from '../heap/options.js';
import type { Address, HeapSnapshot, HeapStats } from '../heap/types.js';
import { OP_ALLOC, OP_FREE, OP_REALLOC, formatTrace } from './format.js';

/** The heap made by `new Heap({ record: true })`: the preset's heap, its calls kept as a trace. */
export class RecordingHeap extends Heap implements HeapOperations {
  private readonly inner: Heap;
  /** The id of each live block, by address. */
  private readonly idOf = new Map<number, number>();
  private nextId = 0;
  private readonly kinds: number[] = [];
  private readonly ids: number[] = [];
  private readonly sizes: number[] = [];
  /** The name given with each request that had one, by its index. */
  private readonly names = new Map<number, string>();
  private destroyed = false;

  constructor(options: ResolvedOptions, inner: Heap) {
    super(options);
    this.inner = inner;
  }

  private keep(kind: number, id: number, size: number, name?: string): void {
    if (name !== undefined) this.names.set(this.kinds.length, name);
    this.kinds.push(kind);
    this.ids.push(id);
    this.sizes.push(size);
  }

  private allocated(ptr: number, size: number, name: string | undefined): number {
    if (ptr !== 0) {
      const id = this.nextId++;
      this.idOf.set(ptr, id);
      this.keep(OP_ALLOC, id, size, name);
    }
    return ptr;
  }

  /** Every call after destroy() throws ERR_HEAP_DESTROYED. */
  protected override assertLive(): void {
    if (this.destroyed) throw destroyedError();
  }

  override malloc(size: number, name?: string): number {
    this.assertLive();
    return this.allocated(this.inner.malloc(size, name), size, name);
  }

  override calloc(count: number, size: number, name?: string): number {
    this.assertLive();
    const ptr = this.inner.calloc(count, size, name);
    return ptr === 0 ? 0 : this.allocated(ptr, callocBytes(count, size), name);
  }

  override realloc(ptr: Address, size: number, name?: string): number {
    this.assertLive();
    const from = toAddress('realloc', ptr);
    const moved = this.inner.realloc(from, size, name);
    if (from === 0) return this.allocated(moved, size, name);
    const id = this.idOf.get(from)!;
    if (size === 0) {
      this.idOf.delete(from);
      this.keep(OP_FREE, id, 0);
    } else if (moved !== 0) {
      this.idOf.delete(from);
      this.idOf.set(moved, id);
      this.keep(OP_REALLOC, id, size, name);
    }
    return moved;
  }

  override free(ptr: Address): void {
    this.assertLive();
    const at = toAddress('free', ptr);
    this.inner.free(at);
    if (at === 0) return;
    this.keep(OP_FREE, this.idOf.get(at)!, 0);
    this.idOf.delete(at);
  }

  /**
   * The calls recorded so far as a malloc-lab trace (text), for `ffi-heap replay` and `ffi-heap
   * view`. Blocks still live are left live: the trace is the program's, leaks included. With
   * `{ names: true }`, each request made with a name is preceded by a `#name "..."` line, which
   * ffi-heap's tools read and other readers of the format do not.
   */
  override recorded(options?: { names?: boolean }): string {
    this.assertLive();
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError(`recorded(options): options must be an object, got ${options === null ? 'null' : typeof options}`);
    }
    const names = options?.names;
    if (names !== undefined && typeof names !== 'boolean') throw new TypeError(`recorded(options): names must be a boolean, got ${typeof names}`);
    let peak = 0;
    let live = 0;
    const sizeOf = new Map<number, number>();
    for (let i = 0; i < this.kinds.length; i++) {
      const id = this.ids[i]!;
      live += (this.kinds[i] === OP_FREE ? 0 : this.sizes[i]!) - (sizeOf.get(id) ?? 0);
      if (this.kinds[i] === OP_FREE) sizeOf.delete(id);
      else sizeOf.set(id, this.sizes[i]!);
      if (live > peak) peak = live;
    }
    return formatTrace({
      name: 'recorded',
      suggestedHeapSize: peak,
      idCount: this.nextId,
      weight: 1,
      kinds: Uint8Array.from(this.kinds),
      ids: Uint32Array.from(this.ids),
      sizes: Float64Array.from(this.sizes),
      ...(names === true ? { names: this.names } : {}),
    });
  }

  override usableSize(ptr: Address): number {
    this.assertLive();
    return this.inner.usableSize(ptr);
  }

  /** @internal See HeapOperations. */
  override blockAt(ptr: number, op: string): number {
    this.assertLive();
    const start = this.inner.blockAt(ptr, op);
    this.foundEnd = this.inner.foundEnd;
    return start;
  }

  /** @internal See HeapOperations. */
  override rawBytes(start: number, ptr: number, n: number): Uint8Array {
    return this.inner.rawBytes(start, ptr, n);
  }

  override stats(): HeapStats {
    this.assertLive();
    return this.inner.stats();
  }

  override snapshot(): HeapSnapshot {
    this.assertLive();
    return this.inner.snapshot();
  }

  override check(): void {
    this.assertLive();
    this.inner.check();
  }

  override trim(): void {
    this.assertLive();
    this.inner.trim();
  }

  /** Unmaps everything; the recording goes with it. */
  override destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.owners?.clear();
    this.idOf.clear();
    this.inner.destroy();
  }
}
