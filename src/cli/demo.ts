// `ffi-heap demo [--preset classic|fast] [--algorithm FIT]`: a short tour of an allocator,
// printing the heap after each step.

import { parseArgs } from 'node:util';
import { Heap } from '../heap/presets.js';
import type { Preset } from '../heap/options.js';
import { FIT_ALGORITHMS, type FitAlgorithm } from '../strategies/fit.js';

export const DEMO_USAGE = `usage: ffi-heap demo [--preset classic|fast] [--algorithm first_fit|best_fit|worst_fit]

Allocates, frees and reallocates a few named blocks and prints the heap after each step. The
classic preset (the default) explains each step; --algorithm picks its free-space search.
`;

type Write = (text: string) => void;

/** Runs the tour, writing to `write` (standard output by default). */
export function runDemo(write: Write = (text) => process.stdout.write(text), preset: Preset = 'classic', algorithm: FitAlgorithm = 'first_fit'): void {
  const heap = new Heap({ preset, algorithm });
  const classic = preset === 'classic';
  // The classic preset's steps are told as they happen there; the fast preset's are only named.
  const step = (call: string, story: string): void => {
    write(`\n## ${call}${classic ? `: ${story}` : ''}\n`);
    write(heap.formatMemory());
  };

  write(classic
    ? `ffi-heap tour: the classic preset, ${algorithm.replace('_', ' ')}. Addresses are real native pointers.\n`
    : 'ffi-heap tour: the fast preset (small blocks in pages, the rest in one arena). Addresses are real native pointers.\n');
  const a = heap.malloc(100, 'a: 100 bytes');
  step('malloc(100)', 'one page is mapped; the block takes 176 bytes and the rest stays free');
  const b = heap.malloc(10, 'b: 10 bytes');
  const c = heap.malloc(200, 'c: 200 bytes');
  step('malloc(10), malloc(200)', 'each split off the front of the free block');
  heap.free(b);
  step('free(b)', 'b goes on the free list; its neighbours are in use, so nothing merges');
  heap.free(a);
  step('free(a)', 'a merges with the free block after it (b)');
  const c2 = heap.realloc(c, 600, 'c: grown to 600');
  step('realloc(c, 600)', 'the free block after c is large enough, so c grows in place');
  const big = heap.malloc(5000, 'big: 5000 bytes');
  step('malloc(5000)', 'nothing fits, so a second region is mapped');
  heap.free(big);
  step('free(big)', 'its region is one free block again, so it goes back to the kernel');
  heap.free(c2);
  step('free(c)', 'the last block goes; the region is unmapped and the heap is empty');
  const s = heap.stats();
  write(`\nmmap calls: ${s.mmapCalls}, munmap calls: ${s.munmapCalls}, peak mapped: ${s.peakMapped} bytes\n`);
  heap.destroy();
}

/** The command: returns the exit code. */
export function demoCommand(argv: readonly string[], out: Write, err: Write): number {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { preset: { type: 'string' }, algorithm: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out(DEMO_USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    err(`ffi-heap demo: takes no arguments, got '${positionals.join(' ')}'\n\n${DEMO_USAGE}`);
    return 2;
  }
  const preset = values.preset ?? 'classic';
  if (preset !== 'classic' && preset !== 'fast') {
    err(`ffi-heap demo: --preset must be classic or fast, got '${preset}'\n`);
    return 2;
  }
  const algorithm = values.algorithm ?? 'first_fit';
  if (!(FIT_ALGORITHMS as readonly string[]).includes(algorithm)) {
    err(`ffi-heap demo: --algorithm must be one of ${FIT_ALGORITHMS.join(', ')}, got '${algorithm}'\n`);
    return 2;
  }
  if (preset === 'fast' && values.algorithm !== undefined) {
    err('ffi-heap demo: --algorithm picks the classic preset\'s search; the fast preset has its own\n');
    return 2;
  }
  runDemo(out, preset, algorithm as FitAlgorithm);
  return 0;
}
