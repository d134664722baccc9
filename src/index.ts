// ffi-heap: a native-memory allocator for Node.js and Bun, written in TypeScript over mmap.
//
// The preset classes are exported as values typed by what users may do with them (instanceof),
// so the published types show the Heap API and none of a preset's internals.

import {
  ClassicHeap as ClassicHeapClass, DebugHeap as DebugHeapClass, FastHeap as FastHeapClass, Heap, SharedHeap as SharedHeapClass,
} from './heap/presets.js';
import type { SharedThreadStats } from './heap/types.js';

export { Heap };
export type { HeapOperations } from './heap/heap.js';
export { HeapError, type HeapErrorCode } from './heap/errors.js';
export type { HeapOptions, Preset } from './heap/options.js';
export type { FitAlgorithm } from './strategies/fit.js';
export type { Address, HeapStats, HeapSnapshot, RegionInfo, BlockInfo, SharedHeapHandle, SharedThreadStats } from './heap/types.js';
export { defaultHeap, malloc, calloc, realloc, free, printMemory } from './heap/default.js';
export type { SvgOptions } from './debug/svg.js';
export { toSVG } from './debug/svg.js';
export { Scope, Arena } from './interop/scope.js';
export type { TypedArrayConstructor } from './interop/views.js';

/**
 * A preset's class, for `instanceof` (`heap instanceof ClassicHeap`). Heaps are made by
 * `new Heap(options)` or `Heap.attach(handle)`; constructing a preset class directly is a TypeError.
 */
export type PresetClass<T extends Heap = Heap> = abstract new (...args: never[]) => T;

/** A heap of the fast preset (the default). */
export type FastHeap = Heap;
/** The fast preset's class, for instanceof. */
export const FastHeap: PresetClass = FastHeapClass;
/** A heap of the classic preset. */
export type ClassicHeap = Heap;
/** The classic preset's class, for instanceof. */
export const ClassicHeap: PresetClass = ClassicHeapClass;
/** A heap made with `debug: true`: the debug checks over either preset. */
export type DebugHeap = Heap;
/** The debug wrapper's class, for instanceof. */
export const DebugHeap: PresetClass = DebugHeapClass;
/** A heap made with `shared: true` or `Heap.attach(handle)`. */
export interface SharedHeap extends Heap {
  /** The threads over this heap: open now, reclaimed after they ended, and lock repairs. */
  threads(): SharedThreadStats;
}
/** The shared preset's class, for instanceof. */
export const SharedHeap: PresetClass<SharedHeap> = SharedHeapClass;
