// The public Heap: checks the kinds of its arguments, then hands the call to the engine of its
// preset. Nothing below this layer sees a value of the wrong type.

import { ClassicEngine } from './classic.js';
import { FastEngine } from './fast.js';
import type { Engine, HeapSnapshot, HeapStats } from './engine.js';
import { resolveOptions, type HeapOptions, type Preset } from './options.js';
import { formatLeaks, formatMemory } from '../debug/format.js';
import type { FitAlgorithm } from '../strategies/fit.js';

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

function sizeError(op: string, what: string, value: unknown): Error {
  if (typeof value !== 'number') return new TypeError(`${op}: ${what} must be a number, got ${describe(value)}`);
  return new RangeError(`${op}: ${what} must be a non-negative safe integer, got ${describe(value)}`);
}

function pointerError(op: string, value: unknown): Error {
  if (typeof value !== 'number') return new TypeError(`${op}: the address must be a number, got ${describe(value)}`);
  return new RangeError(`${op}: the address must be a non-negative safe integer, got ${describe(value)}`);
}

function nameError(op: string, value: unknown): TypeError {
  return new TypeError(`${op}: the name must be a string, got ${describe(value)}`);
}

/** A size or count: a non-negative safe integer. The first test settles the common case. */
function isSize(value: number): boolean {
  return (value >>> 0) === value || (Number.isSafeInteger(value) && value >= 0);
}

/** An address: a non-negative safe integer (0 included). */
function isAddress(value: number): boolean {
  return value >= 0 && value <= Number.MAX_SAFE_INTEGER && Math.floor(value) === value;
}

/**
 * A heap of native memory. Addresses are Numbers: pass them to C through koffi as pointers
 * (declare the parameter as a pointer or `intptr_t`). 0 is NULL.
 */
export class Heap {
  /** The preset this heap runs. */
  readonly preset: Preset;
  /** The classic preset's free-space search. */
  readonly algorithm: FitAlgorithm;
  /** Whether new allocations are filled with 0xAA. */
  readonly scribble: boolean;
  private readonly engine: Engine;

  constructor(options: HeapOptions = {}) {
    const resolved = resolveOptions(options);
    this.preset = resolved.preset;
    this.algorithm = resolved.algorithm;
    this.scribble = resolved.scribble;
    this.engine = resolved.preset === 'classic' ? new ClassicEngine(resolved) : new FastEngine(resolved);
  }

  /** Allocates `size` bytes, optionally named. Returns the address, or 0 when no memory can be had. */
  malloc(size: number, name?: string): number {
    if (typeof size !== 'number' || !isSize(size)) throw sizeError('malloc', 'size', size);
    if (name !== undefined && typeof name !== 'string') throw nameError('malloc', name);
    return this.engine.malloc(size, name);
  }

  /** Allocates `count * size` zeroed bytes. Returns 0 when the product overflows or no memory can be had. */
  calloc(count: number, size: number, name?: string): number {
    if (typeof count !== 'number' || !isSize(count)) throw sizeError('calloc', 'count', count);
    if (typeof size !== 'number' || !isSize(size)) throw sizeError('calloc', 'size', size);
    if (name !== undefined && typeof name !== 'string') throw nameError('calloc', name);
    const total = count * size;
    if (total > Number.MAX_SAFE_INTEGER) return 0;
    return this.engine.calloc(total, name);
  }

  /**
   * Resizes the block at `ptr` to `size` bytes, keeping its contents up to the smaller size.
   * `realloc(0, n)` is `malloc(n)`; `realloc(p, 0)` frees p and returns 0. Returns the (possibly
   * moved) address, or 0 when no memory can be had, in which case the old block is untouched.
   * The name, when given, replaces the block's name.
   */
  realloc(ptr: number, size: number, name?: string): number {
    if (typeof ptr !== 'number' || !isAddress(ptr)) throw pointerError('realloc', ptr);
    if (typeof size !== 'number' || !isSize(size)) throw sizeError('realloc', 'size', size);
    if (name !== undefined && typeof name !== 'string') throw nameError('realloc', name);
    if (ptr === 0) return this.engine.malloc(size, name);
    return this.engine.realloc(ptr, size, name);
  }

  /** Frees the block at `ptr`. `free(0)` does nothing. Throws HeapError for anything but a live block. */
  free(ptr: number): void {
    if (typeof ptr !== 'number' || !isAddress(ptr)) throw pointerError('free', ptr);
    if (ptr !== 0) this.engine.free(ptr);
  }

  /**
   * A Uint8Array over the first `length` bytes of the live block at `ptr` (all its usable bytes by
   * default). It aliases native memory: do not keep it past `free(ptr)`.
   */
  bytes(ptr: number, length?: number): Uint8Array {
    if (typeof ptr !== 'number' || !isAddress(ptr)) throw pointerError('bytes', ptr);
    if (length !== undefined && (typeof length !== 'number' || !isSize(length))) {
      throw sizeError('bytes', 'length', length);
    }
    return this.engine.bytes(ptr, length);
  }

  /** How many bytes the block at `ptr` can hold (at least what was asked for). */
  usableSize(ptr: number): number {
    if (typeof ptr !== 'number' || !isAddress(ptr)) throw pointerError('usableSize', ptr);
    return this.engine.usableSize(ptr);
  }

  /** Counters: bytes mapped and in use (with peaks), blocks, regions, mmap and munmap calls. */
  stats(): HeapStats {
    return this.engine.stats();
  }

  /** Every region and block, and the free list, as plain data. */
  snapshot(): HeapSnapshot {
    return this.engine.snapshot();
  }

  /** The print_memory text: regions, blocks and the free list. */
  formatMemory(): string {
    return formatMemory(this.engine.snapshot());
  }

  /** Writes formatMemory() to standard output. */
  printMemory(): void {
    process.stdout.write(this.formatMemory());
  }

  /** The leak-check text: every block still in use, and the totals. */
  leakReport(): string {
    return formatLeaks(this.engine.snapshot());
  }

  /** Walks every invariant of the heap; throws HeapError('ERR_HEAP_CORRUPTED') naming the first fault. */
  check(): void {
    this.engine.check();
  }

  /**
   * Gives free memory back to the kernel now. The fast preset keeps some free memory at the top
   * of its heap for reuse; after trim() an empty heap holds nothing. The classic preset already
   * unmaps every region as soon as it is free.
   */
  trim(): void {
    this.engine.trim();
  }

  /** Unmaps all memory. Every address from this heap is invalid afterwards, and so is the heap. */
  destroy(): void {
    this.engine.destroy();
  }
}
