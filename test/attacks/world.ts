// A heap under attack and what the attacker knows of it: the live blocks with the pattern each
// holds (checked through raw views, not through the heap, which is what is being doubted), raw
// writes into native memory, and `attempt`, which accepts a call's result or ERR_HEAP_CORRUPTED
// and nothing else.

import koffi from 'koffi';
import { Heap, HeapError, type HeapOptions } from '../../src/index.js';
import { Broken } from './case.js';

/** Bytes of a raw view of native memory, bypassing the heap. */
export function raw(address: number, length: number): Uint8Array {
  return new Uint8Array(koffi.view(address, length) as ArrayBuffer);
}

/** Writes a u32 at `address` (any alignment the heap gives: 4 at least). */
export function poke32(address: number, value: number): void {
  new Uint32Array(koffi.view(address, 4) as ArrayBuffer)[0] = value >>> 0;
}

/** Writes a u64 at `address`, little-endian, from a Number below 2^53 (or its low 64 bits' worth). */
export function poke64(address: number, value: number): void {
  const words = new Uint32Array(koffi.view(address, 8) as ArrayBuffer);
  words[0] = value % 2 ** 32 >>> 0;
  words[1] = Math.floor(value / 2 ** 32) >>> 0;
}

export const hex = (n: number): string => '0x' + n.toString(16);

function patternByte(seed: number, i: number): number {
  return (seed * 31 + i * 7 + 0x5b) & 0xff;
}

interface Live {
  readonly size: number;
  readonly seed: number;
}

/** Bytes before a block's data that belong to it (the header; in debug mode also the canary). */
export function headerBytes(options: HeapOptions): number {
  return (options.preset === 'classic' ? 64 : 8) + (options.debug ? 16 : 0);
}

export class World {
  readonly heap: Heap;
  readonly header: number;
  private readonly live = new Map<number, Live>();
  private seeds = 1;

  constructor(readonly options: HeapOptions) {
    this.heap = new Heap(options);
    this.header = headerBytes(options);
    // One roomy region for what follows: a block shrunk in place leaves a large free tail behind
    // it, so that the classic preset carves the next blocks out of one mapping, which stays mapped
    // while this block lives. (A classic region that becomes one free block is unmapped, and a
    // write after free there would fault in the test itself, not in the heap.)
    // (Debug mode moves on every realloc, and never unmaps a freed block's memory: it quarantines it.)
    const pad = this.heap.realloc(this.heap.malloc(64 * 1024), 64);
    if (pad === 0) throw new Error('setup: malloc failed');
    this.live.set(pad, { size: 0, seed: 0 });
  }

  /** Throws (as a setup error, not a heap failure) unless `address` lies in memory the heap maps. */
  assertMapped(address: number): void {
    const inside = this.heap.snapshot().regions.some((r) => r.address <= address && address < r.address + r.size);
    if (!inside) throw new Error(`setup: ${hex(address)} is not in any region of the heap; a write there would fault in the test`);
  }

  /** malloc through the heap, expected to succeed; the block is filled with its own pattern. */
  alloc(size: number): number {
    const p = this.heap.malloc(size);
    if (p === 0) throw new Broken(`setup: malloc(${size}) returned 0`);
    this.adopt(p, size, 'malloc');
    return p;
  }

  /** Frees a live block the world knows. */
  release(p: number): void {
    this.live.delete(p);
    this.heap.free(p);
  }

  /** Forgets a block without freeing it (the heap freed or moved it). */
  forget(p: number): void {
    this.live.delete(p);
  }

  has(p: number): boolean {
    return this.live.has(p);
  }

  sizeOf(p: number): number {
    return this.live.get(p)?.size ?? 0;
  }

  /** Live blocks, in address order. */
  blocks(): number[] {
    return [...this.live.keys()].sort((a, b) => a - b);
  }

  /**
   * Takes a block the heap just handed out: it must not overlap any live block (its header
   * included), then it is filled and tracked like the others.
   */
  adopt(p: number, size: number, op: string): void {
    if (!Number.isSafeInteger(p) || p <= 0) throw new Broken(`${op} returned ${p}, not an address`);
    if (p % 16 !== 0) throw new Broken(`${op} returned ${hex(p)}, not 16-byte aligned`);
    for (const [q, block] of this.live) {
      if (p < q + block.size && q - this.header < p + size) {
        throw new Broken(`${op} returned ${hex(p)} (${size} bytes), overlapping the live block ${hex(q)} (${block.size} bytes)`);
      }
    }
    const seed = this.seeds++;
    const bytes = raw(p, size);
    for (let i = 0; i < size; i++) bytes[i] = patternByte(seed, i);
    this.live.set(p, { size, seed });
  }

  /** Every live block still holds its pattern; throws naming the first that does not. */
  verify(when: string): void {
    for (const [p, { size, seed }] of this.live) {
      if (size === 0) continue;
      const bytes = raw(p, size);
      for (let i = 0; i < size; i++) {
        if (bytes[i] !== patternByte(seed, i)) {
          throw new Broken(`${when}: live block ${hex(p)} (${size} bytes) changed at byte ${i} (now ${hex(bytes[i]!)})`);
        }
      }
    }
  }

  /**
   * Runs one call on the damaged heap. It may return (the result is given back) or throw
   * HeapError ERR_HEAP_CORRUPTED (undefined is given back); anything else it throws is the
   * failure. Live blocks are verified afterwards either way.
   */
  attempt<T>(what: string, call: () => T): T | undefined {
    let result: T | undefined;
    try {
      result = call();
    } catch (error) {
      if (!(error instanceof HeapError && error.code === 'ERR_HEAP_CORRUPTED')) {
        const code = (error as { code?: unknown }).code;
        throw new Broken(`${what} threw ${(error as Error).name ?? typeof error}${code === undefined ? '' : ` ${String(code)}`}: ${(error as Error).message}`);
      }
    }
    this.verify(`after ${what}`);
    return result;
  }

  /** A malloc on the damaged heap: an address of fresh memory, or ERR_HEAP_CORRUPTED. */
  tryMalloc(size: number): void {
    const p = this.attempt(`malloc(${size})`, () => this.heap.malloc(size));
    if (p === undefined) return;
    if (p === 0) throw new Broken(`malloc(${size}) returned 0 on a heap with no limit`);
    this.adopt(p, size, `malloc(${size})`);
  }

  tryCalloc(count: number, size: number): void {
    const p = this.attempt(`calloc(${count}, ${size})`, () => this.heap.calloc(count, size));
    if (p === undefined) return;
    if (p === 0) throw new Broken(`calloc(${count}, ${size}) returned 0 on a heap with no limit`);
    const bytes = raw(p, count * size);
    const dirty = bytes.findIndex((b) => b !== 0);
    if (dirty >= 0) throw new Broken(`calloc(${count}, ${size}) returned ${hex(p)} with byte ${dirty} not zero`);
    this.adopt(p, count * size, `calloc(${count}, ${size})`);
  }

  tryFree(p: number): void {
    this.live.delete(p);
    this.attempt(`free(${hex(p)})`, () => this.heap.free(p));
  }

  /** realloc of a live block: the kept bytes must come along, and the new block overlap nothing. */
  tryRealloc(p: number, size: number): void {
    const old = this.live.get(p);
    if (old === undefined) throw new Error(`tryRealloc: ${hex(p)} is not live`);
    const before = raw(p, Math.min(old.size, size)).slice();
    let q: number | undefined;
    try {
      q = this.heap.realloc(p, size);
    } catch (error) {
      if (!(error instanceof HeapError && error.code === 'ERR_HEAP_CORRUPTED')) {
        throw new Broken(`realloc(${hex(p)}, ${size}) threw ${(error as Error).name} ${String((error as { code?: unknown }).code)}: ${(error as Error).message}`);
      }
      this.verify(`after realloc(${hex(p)}, ${size}) was refused`);
      return;
    }
    if (q === 0) throw new Broken(`realloc(${hex(p)}, ${size}) returned 0 on a heap with no limit`);
    this.live.delete(p);
    this.verify(`after realloc(${hex(p)}, ${size})`);
    const kept = raw(q, before.length);
    const lost = before.findIndex((b, i) => kept[i] !== b);
    if (lost >= 0) throw new Broken(`realloc(${hex(p)}, ${size}) -> ${hex(q)} lost byte ${lost} of the old contents`);
    this.adopt(q, size, `realloc(${hex(p)}, ${size})`);
  }

  /** Ends the world: destroy may only succeed or say the heap is corrupted. */
  end(): void {
    try {
      this.heap.destroy();
    } catch (error) {
      if (!(error instanceof HeapError && error.code === 'ERR_HEAP_CORRUPTED')) throw new Broken(`destroy() threw ${String(error)}`);
    }
  }
}
