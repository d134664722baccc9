// The one list of heap configurations every contract suite and the property test run against.
// A suite loops over PRESETS; where a configuration legitimately behaves differently, it reads one
// of the capability flags below instead of skipping the case: adding a preset here adds it to every
// suite, and a difference not declared here is a failing test.

import { Heap, type HeapOptions } from '../src/index.js';

export interface TestPreset {
  readonly name: string;
  readonly options: HeapOptions;
  /** Blocks carry names (print_memory, leak report, realloc renames). The shared heap refuses them. */
  readonly names: boolean;
  /** autoFree is accepted (the shared heap refuses it: a finalizer runs in one thread only). */
  readonly autoFree: boolean;
  /**
   * Debug checks: canaries, exact usable sizes, realloc always moves, and freed blocks held in a
   * quarantine (counted in use, not handed out again) until it drains or trim() empties it.
   */
  readonly debugChecks: boolean;
  /**
   * Bytes from a block's address, as print_memory and the leak report show it, to its data, for a
   * request of `size` bytes (the fast preset's small blocks, up to 256 bytes, have no header).
   */
  headerOf(size: number): number;
}

export const PRESETS: readonly TestPreset[] = [
  // Requests of up to 256 bytes come from pages: slots with no header.
  { name: 'fast', options: { preset: 'fast' }, names: true, autoFree: true, debugChecks: false, headerOf: (n) => (n <= 256 ? 0 : 8) },
  // Small requests as blocks of the medium lists, never from pages.
  { name: 'fast unpaged', options: { preset: 'fast', pagesFrom: Infinity }, names: true, autoFree: true, debugChecks: false, headerOf: () => 8 },
  { name: 'classic', options: { preset: 'classic', algorithm: 'first_fit' }, names: true, autoFree: true, debugChecks: false, headerOf: () => 64 },
  { name: 'debug', options: { preset: 'fast', debug: true }, names: true, autoFree: true, debugChecks: true, headerOf: (n) => (n + 32 <= 256 ? 16 : 24) },
  { name: 'debug classic', options: { preset: 'classic', debug: true }, names: true, autoFree: true, debugChecks: true, headerOf: () => 80 },
  // Small requests from pages each thread owns, as in the fast preset.
  { name: 'shared', options: { shared: true }, names: false, autoFree: false, debugChecks: false, headerOf: (n) => (n <= 256 ? 0 : 8) },
];

/** A new heap of preset `p`, with `extra` options on top (scribble, limit...). */
export function makeHeap(p: TestPreset, extra: HeapOptions = {}): Heap {
  return new Heap({ ...p.options, ...extra });
}

/**
 * PRESETS with the classic preset's best and worst fit beside its first fit: for the suites about
 * what a free-list walk meets (the attack suite), where each fit walks the list its own way.
 */
export const WITH_FITS: readonly TestPreset[] = PRESETS.flatMap((p) => p.name !== 'classic' ? [p] : [
  p,
  { ...p, name: 'classic best_fit', options: { ...p.options, algorithm: 'best_fit' } },
  { ...p, name: 'classic worst_fit', options: { ...p.options, algorithm: 'worst_fit' } },
]);

/** The entry of WITH_FITS named `name` (child processes get presets by name). */
export function presetNamed(name: string): TestPreset {
  const entry = WITH_FITS.find((p) => p.name === name);
  if (entry === undefined) throw new Error(`no preset named '${name}'`);
  return entry;
}
