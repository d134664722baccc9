// Lifetimes for native memory: a scope that frees what was allocated in it when it ends, and an
// arena that hands out pieces of one block and gives them all back at once.

import type { Heap } from '../heap/heap.js';
import { checkName, checkSize, toAddress } from '../heap/arguments.js';
import type { Address } from '../heap/types.js';
import type { CType } from '../os/libc.js';
import type { TypedArrayConstructor } from './views.js';
import { HeapError, hex } from '../heap/errors.js';

/**
 * Allocations that end together. Everything allocated through the scope and still live is freed
 * when the scope is disposed: at the end of a `using` block, by `dispose()`, or by
 * `heap.withScope(fn)` when `fn` returns or throws.
 */
export class Scope implements Disposable {
  private readonly heap: Heap;
  private readonly owned = new Set<number>();
  private disposed = false;

  constructor(heap: Heap) {
    this.heap = heap;
  }

  private live(op: string): void {
    if (this.disposed) throw new HeapError('ERR_SCOPE_ENDED', `scope.${op}: this scope has ended; it takes no more calls`);
  }

  private keep(ptr: number): number {
    if (ptr !== 0) this.owned.add(ptr);
    return ptr;
  }

  malloc(size: number, name?: string): number {
    this.live('malloc');
    return this.keep(this.heap.malloc(size, name));
  }

  calloc(count: number, size: number, name?: string): number {
    this.live('calloc');
    return this.keep(this.heap.calloc(count, size, name));
  }

  /** Room for `count` zeroed values of a koffi type (heap.alloc), freed with the scope; 0 when no memory can be had. */
  alloc(type: CType, count = 1, name?: string): number {
    this.live('alloc');
    return this.keep(this.heap.alloc(type, count, name));
  }

  /** A NUL-terminated UTF-8 copy of `text`, freed with the scope. */
  cstring(text: string, name?: string): number {
    this.live('cstring');
    return this.keep(this.heap.cstring(text, name));
  }

  /** realloc of a block this scope owns; the result stays owned. */
  realloc(ptr: Address, size: number, name?: string): number {
    ptr = toAddress('scope.realloc', ptr);
    this.live('realloc');
    if (ptr !== 0 && !this.owned.has(ptr)) {
      throw new HeapError('ERR_INVALID_POINTER', `scope.realloc(${hex(ptr)}): not a live block of this scope`, ptr);
    }
    const moved = this.heap.realloc(ptr, size, name);
    if (moved !== 0 || size === 0) this.owned.delete(ptr);
    return moved === 0 ? 0 : this.keep(moved);
  }

  /** Frees one block early; the scope forgets it. `free(0)` does nothing. */
  free(ptr: Address): void {
    ptr = toAddress('scope.free', ptr);
    if (ptr === 0) return;
    this.live('free');
    if (!this.owned.has(ptr)) throw new HeapError('ERR_INVALID_POINTER', `scope.free(${hex(ptr)}): not a live block of this scope`, ptr);
    this.heap.free(ptr);
    this.owned.delete(ptr);
  }

  /** How many blocks the scope still owns. */
  get size(): number {
    return this.owned.size;
  }

  /**
   * Frees every block the scope still owns, then reports what it met: a block the heap refused
   * (freed directly, say) does not stop the others being freed. One refusal is rethrown as a
   * HeapError with the same code and address, its message starting `scope.dispose()` and the
   * original as its `cause`; several are an AggregateError holding each. The scope has ended
   * either way, and a second dispose() does nothing.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const errors: unknown[] = [];
    for (const ptr of this.owned) {
      try {
        this.heap.free(ptr);
      } catch (e) {
        errors.push(e);
      }
    }
    const count = this.owned.size;
    this.owned.clear();
    if (errors.length === 0) return;
    const first = errors[0];
    if (errors.length === 1 && first instanceof HeapError) {
      const error = new HeapError(first.code, `scope.dispose(): ${first.message} (the scope's other ${count - 1} blocks were freed)`, first.address);
      (error as Error).cause = first;
      throw error;
    }
    throw new AggregateError(errors, `scope.dispose(): ${errors.length} of the scope's ${count} blocks could not be freed (the others were)`);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Bump allocation inside one block of the heap: `alloc` is a few additions, nothing is freed one
 * by one, and `reset()` or `dispose()` ends every piece at once. For per-call temporaries.
 */
export class Arena implements Disposable {
  private readonly heap: Heap;
  /** The arena's block, 0 once disposed. */
  private block: number;
  private readonly capacity: number;
  private used = 0;

  constructor(heap: Heap, capacity: number, name?: string) {
    checkSize('arena', 'capacity', capacity);
    checkName('arena', name);
    this.heap = heap;
    this.capacity = capacity;
    // Unnamed unless a name is given: a shared heap refuses names.
    this.block = name === undefined ? heap.malloc(capacity) : heap.malloc(capacity, name);
    if (this.block === 0) throw new HeapError('ERR_OUT_OF_MEMORY', `arena: no memory for ${capacity} bytes`);
  }

  /** `size` bytes aligned to `alignment` (a power of two, default 16), or 0 when the arena is full. */
  alloc(size: number, alignment = 16): number {
    checkSize('arena.alloc', 'size', size);
    if (typeof alignment !== 'number') {
      throw new TypeError(`arena.alloc: alignment must be a number, got ${alignment === null ? 'null' : typeof alignment}`);
    }
    if (!(alignment > 0 && (alignment & (alignment - 1)) === 0 && alignment <= 4096)) {
      throw new RangeError(`arena.alloc: alignment must be a power of two up to 4096, got ${alignment}`);
    }
    if (this.block === 0) throw new HeapError('ERR_SCOPE_ENDED', 'arena.alloc: this arena was disposed; it takes no more calls');
    const start = Math.ceil((this.block + this.used) / alignment) * alignment;
    const end = start + size;
    if (end > this.block + this.capacity) return 0;
    this.used = end - this.block;
    return start;
  }

  /**
   * A piece of `count` elements of a typed array type, aligned to its element size, as a view of
   * exactly those elements: `arena.view(Float64Array, 16)`. null when the arena is full.
   */
  view<T extends TypedArrayConstructor>(type: T, count: number): InstanceType<T> | null {
    const element = type?.BYTES_PER_ELEMENT;
    if (typeof element !== 'number') throw new TypeError('arena.view: the type must be a typed-array constructor, such as Float64Array');
    checkSize('arena.view', 'count', count);
    if (this.block === 0) throw new HeapError('ERR_SCOPE_ENDED', 'arena.view: this arena was disposed; it takes no more calls');
    const piece = this.alloc(count * element, Math.max(element, 1));
    return piece === 0 ? null : this.heap.view(piece, type, count);
  }

  /** Bytes handed out so far (alignment padding included). */
  get bytesUsed(): number {
    return this.used;
  }

  /** Ends every piece handed out; the arena can be used again. */
  reset(): void {
    this.used = 0;
  }

  /** Frees the arena's block. The arena has ended even if the heap refuses; twice is harmless. */
  dispose(): void {
    if (this.block === 0) return;
    const block = this.block;
    this.block = 0;
    this.heap.free(block);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
