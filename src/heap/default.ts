// The default heap behind the top-level malloc/calloc/realloc/free, made on first use from the
// environment (see the README): ALLOCATOR_PRESET, ALLOCATOR_ALGORITHM, ALLOCATOR_SCRIBBLE and
// ALLOCATOR_LEAK_CHECK, which prints the leak report to standard output when the process exits.

import { writeSync } from 'node:fs';
import { Heap } from './presets.js';
import { optionsFromEnvironment } from './options.js';
import type { Address } from './types.js';

let heap: Heap | undefined;

/** The process-wide heap used by the top-level functions, created on first use. */
export function defaultHeap(): Heap {
  if (heap === undefined) {
    const config = optionsFromEnvironment();
    const created = new Heap(config.options);
    if (config.leakCheck) process.on('exit', () => writeSync(1, created.leakReport()));
    heap = created;
  }
  return heap;
}

/** malloc on the default heap. */
export function malloc(size: number, name?: string): number {
  return defaultHeap().malloc(size, name);
}

/** calloc on the default heap. */
export function calloc(count: number, size: number, name?: string): number {
  return defaultHeap().calloc(count, size, name);
}

/** realloc on the default heap. */
export function realloc(ptr: Address, size: number, name?: string): number {
  return defaultHeap().realloc(ptr, size, name);
}

/** free on the default heap. */
export function free(ptr: Address): void {
  defaultHeap().free(ptr);
}

/** print_memory of the default heap, to standard output. */
export function printMemory(): void {
  defaultHeap().printMemory();
}
