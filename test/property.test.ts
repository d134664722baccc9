// Property: whatever program of malloc, calloc, realloc, free, trim and misuse (double frees,
// interior, foreign and unmapped addresses, arguments of the wrong kind) runs, every misuse is
// refused with the right error, check() passes after every op, every live block keeps its bytes,
// and freeing everything leaves the heap empty. For every entry of PRESETS (./presets.ts).
//
// fast-check generates whole programs (./programs.ts), with bursts that build live sets of
// thousands of blocks, so a failure is shrunk to a short program and printed as one. Writes after
// free are in ./writes-after-free.test.ts, in a child process.

import fc from 'fast-check';
import { test } from 'uvu';
import { ModelRun, type Op } from './model.js';
import { PRESETS, type TestPreset } from './presets.js';
import { programArbitrary } from './programs.js';

/** Programs per preset, and ops per program: a few seconds a preset on a 2-core machine. */
const RUNS = 60;
const LENGTH = 60;

function run(preset: TestPreset, program: readonly Op[]): number {
  const model = new ModelRun(preset.options);
  let peak = 0;
  try {
    for (const op of program) {
      model.step(op);
      peak = Math.max(peak, model.liveBlocks);
    }
    model.finish();
  } catch (error) {
    model.dispose();
    throw error;
  }
  return peak;
}

for (const [i, preset] of PRESETS.entries()) {
  test(`${preset.name}: ${RUNS} random programs of up to ${LENGTH} ops keep the heap sound`, () => {
    const started = performance.now();
    let peak = 0;
    fc.assert(fc.property(programArbitrary(false, LENGTH), (program) => {
      peak = Math.max(peak, run(preset, program));
    }), { numRuns: RUNS, seed: 20261126 + i });
    console.log(`  ${preset.name}: ${RUNS} programs, up to ${peak} live blocks at once, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
}

test.run();
