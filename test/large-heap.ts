// npm run test:large: a heap that holds more than 4 GiB at once (5 GiB in 1 MiB blocks), every
// block written and checked, in both presets. Kept out of `npm test`: it needs 5 GiB of memory and
// some seconds.

import { Heap } from '../src/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TOTAL = 5 * GiB;

for (const preset of ['fast', 'classic'] as const) {
  const started = performance.now();
  const heap = new Heap({ preset });
  const ptrs: number[] = [];
  for (let i = 0; i < TOTAL / MiB; i++) {
    const p = heap.malloc(MiB);
    if (p === 0) throw new Error(`${preset}: malloc failed after ${i} MiB`);
    new Uint32Array(heap.bytes(p, MiB).buffer, heap.bytes(p, MiB).byteOffset, MiB / 4).fill(i);
    ptrs.push(p);
  }
  const held = heap.stats().mapped;
  if (held < TOTAL) throw new Error(`${preset}: only ${held} bytes mapped`);
  heap.check();
  ptrs.forEach((p, i) => {
    const words = new Uint32Array(heap.bytes(p, MiB).buffer, heap.bytes(p, MiB).byteOffset, MiB / 4);
    for (let w = 0; w < words.length; w += 1021) if (words[w] !== i) throw new Error(`${preset}: block ${i} lost its bytes`);
  });
  for (const p of ptrs) heap.free(p);
  heap.trim();
  if (heap.stats().mapped !== 0) throw new Error(`${preset}: ${heap.stats().mapped} bytes still mapped`);
  heap.destroy();
  console.log(`large heap ${preset}: ${(held / GiB).toFixed(2)} GiB held at once, written and checked, all returned (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
