// `ffi-heap demo`: a short tour of the classic allocator, printing the heap after each step.

import { Heap } from '../heap/presets.js';

type Write = (text: string) => void;

/** Runs the tour, writing to `write` (standard output by default). */
export function runDemo(write: Write = (text) => process.stdout.write(text)): void {
  const heap = new Heap({ preset: 'classic', algorithm: 'first_fit' });
  const step = (title: string): void => {
    write(`\n## ${title}\n`);
    write(heap.formatMemory());
  };

  write('ffi-heap tour: the classic preset, first fit. Addresses are real native pointers.\n');
  const a = heap.malloc(100, 'a: 100 bytes');
  step('malloc(100): one page is mapped; the block takes 176 bytes and the rest stays free');
  const b = heap.malloc(10, 'b: 10 bytes');
  const c = heap.malloc(200, 'c: 200 bytes');
  step('malloc(10), malloc(200): each split off the front of the free block');
  heap.free(b);
  step('free(b): b goes on the free list; its neighbours are in use, so nothing merges');
  heap.free(a);
  step('free(a): a merges with the free block after it (b)');
  const c2 = heap.realloc(c, 600, 'c: grown to 600');
  step('realloc(c, 600): the free block after c is large enough, so c grows in place');
  const big = heap.malloc(5000, 'big: 5000 bytes');
  step('malloc(5000): nothing fits, so a second region is mapped');
  heap.free(big);
  step('free(big): its region is one free block again, so it goes back to the kernel');
  heap.free(c2);
  step('free(c): the last block goes; the region is unmapped and the heap is empty');
  const s = heap.stats();
  write(`\nmmap calls: ${s.mmapCalls}, munmap calls: ${s.munmapCalls}, peak mapped: ${s.peakMapped} bytes\n`);
  heap.destroy();
}
