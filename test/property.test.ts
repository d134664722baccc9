// Property: whatever sequence of malloc, calloc, realloc, free and misuse (double frees, interior,
// foreign and unmapped addresses, arguments of the wrong kind) a program makes, every misuse is
// refused with the right error, check() passes after every step, every live block keeps its
// bytes, and freeing everything leaves the heap empty. 200 programs of 1,000 steps per preset (20
// for the shared preset, run in one thread: its lock-free and locked paths, with every misuse).
//
// fast-check picks each program's seed; the steps come from the seeded PRNG (cheap to make), so a
// failure names a seed that `npm run soak -- --seed S --ops 1000` replays.

import fc from 'fast-check';
import { test } from 'uvu';
import { random } from '../src/debug/random.js';
import { ModelRun } from './model.js';

const RUNS = 200;
const STEPS = 1000;

function program(preset: 'fast' | 'classic', seed: number, debug = false, shared = false): void {
  const next = random(seed);
  const int = (): number => Math.floor(next() * 2 ** 31);
  const run = new ModelRun(preset, debug, shared);
  try {
    for (let i = 0; i < STEPS; i++) run.step([Math.floor(next() * 100), int(), int()]);
    run.finish();
  } catch (error) {
    run.heap.destroy();
    throw error;
  }
}

for (const preset of ['fast', 'classic'] as const) {
  test(`${preset}: ${RUNS} random programs of ${STEPS} steps keep the heap sound`, () => {
    fc.assert(fc.property(fc.nat(), (seed) => program(preset, seed)), { numRuns: RUNS, seed: 20261126 });
  });
}

for (const preset of ['fast', 'classic'] as const) {
  test(`${preset}, debug: ${RUNS / 10} random programs of ${STEPS} steps keep the heap sound`, () => {
    fc.assert(fc.property(fc.nat(), (seed) => program(preset, seed, true)), { numRuns: RUNS / 10, seed: 20261127 });
  });
}

test(`fast, shared (one thread): ${RUNS / 10} random programs of ${STEPS} steps keep the heap sound`, () => {
  fc.assert(fc.property(fc.nat(), (seed) => program('fast', seed, false, true)), { numRuns: RUNS / 10, seed: 20261128 });
});

test.run();
