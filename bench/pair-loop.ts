// A malloc+free pair of one size, N times, at a call site of its own with the size a constant, and
// nothing else: the program to count instructions in under callgrind, where times are too noisy to
// compare builds. The difference of two counts (5 and 1 million pairs) divided by the pairs between
// them is the pair's cost, with the process's start and the JIT's warm-up taken out:
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded build/bench/pair-loop.js 64 1000000
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded build/bench/pair-loop.js 64 5000000
//
// Each prints "Collected : N" on its last line; (N5 - N1) / 4,000,000 is the figure benchmarks.md
// quotes. Counts of one build differ by a few instructions between runs.

import { Heap } from '../src/index.js';

const [size, pairs] = process.argv.slice(2).map(Number);
if (!Number.isInteger(size) || !Number.isInteger(pairs) || size! < 0 || pairs! < 1) {
  console.error('usage: node build/bench/pair-loop.js SIZE PAIRS');
  process.exit(2);
}
const heap = new Heap({ preset: 'fast' });
// A function of its own for the loop, with the size written into its source: a constant at the
// call site, as `malloc(64)` is in a program.
const run = new Function('heap', 'n', `for (let i = 0; i < n; i++) { const p = heap.malloc(${size}); heap.free(p); }`) as (heap: Heap, n: number) => void;
run(heap, pairs!);
heap.destroy();
