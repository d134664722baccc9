// ffi-heap: a native-memory allocator for Node.js and Bun, written in TypeScript over mmap.

export { Heap, ClassicHeap, FastHeap, DebugHeap, SharedHeap } from './heap/presets.js';
export type { HeapOperations } from './heap/heap.js';
export { HeapError, type HeapErrorCode } from './heap/errors.js';
export type { HeapOptions, Preset } from './heap/options.js';
export type { FitAlgorithm } from './strategies/fit.js';
export type { HeapStats, HeapSnapshot, RegionInfo, BlockInfo, SharedHeapHandle, SharedThreadStats } from './heap/types.js';
export { defaultHeap, malloc, calloc, realloc, free, printMemory } from './heap/default.js';
export type { SvgOptions } from './debug/svg.js';
export { toSVG } from './debug/svg.js';
export { Scope, Arena } from './interop/scope.js';
export type { TypedArrayConstructor } from './interop/views.js';
