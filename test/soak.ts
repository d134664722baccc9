// npm run soak -- [--ops N] [--seed S] [--preset NAME] [--writes-after-free]
// The property test's random programs (./programs.ts) for as long as asked, on every entry of
// PRESETS (or the one named), with a summary at the end; the model's checks are spread over the
// steps (see VERIFY_WINDOW). With --writes-after-free, writes into freed blocks join the mix: a
// heap that reports ERR_HEAP_CORRUPTED is dropped and a fresh one taken; any other answer, a
// crash or a hang is a failure.

import { parseArgs } from 'node:util';
import { random } from '../src/debug/random.js';
import { ModelRun } from './model.js';
import { PRESETS } from './presets.js';
import { randomOp } from './programs.js';

const { values } = parseArgs({
  options: { ops: { type: 'string' }, seed: { type: 'string' }, preset: { type: 'string' }, 'writes-after-free': { type: 'boolean' } },
});
const ops = Number(values.ops ?? 1_000_000);
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const waf = values['writes-after-free'] ?? false;
const presets = values.preset === undefined ? PRESETS : PRESETS.filter((p) => p.name === values.preset);
if (!Number.isSafeInteger(ops) || ops < 1 || !Number.isSafeInteger(seed) || presets.length === 0) {
  console.error(`usage: npm run soak -- [--ops N] [--seed S] [--preset ${PRESETS.map((p) => `'${p.name}'`).join('|')}] [--writes-after-free]`);
  process.exit(2);
}

/** Ops per heap before a fresh one, so that growth, trimming and teardown are soaked too. */
const PER_HEAP = 2_000;
/**
 * Each step proves a window of the live blocks' bytes, in turn, and every CHECK_EVERY-th step runs
 * check(); a heap's finish does both in full. Both in full at every step, as the property test
 * does, makes each step cost as much as the heap is large: a heap's 2,000 steps come to hold over
 * 150,000 live blocks.
 */
const VERIFY_WINDOW = 64;
const CHECK_EVERY = 16;
const runOptions = { writesAfterFree: waf, verifyWindow: VERIFY_WINDOW, checkEvery: CHECK_EVERY };

for (const preset of presets) {
  const next = random(seed);
  const started = performance.now();
  let run = new ModelRun(preset.options, runOptions);
  let heaps = 1;
  let corrupted = 0;
  for (let i = 1; i <= ops; i++) {
    const op = randomOp(next, waf);
    if (!run.step(op) || i % PER_HEAP === 0) {
      if (run.corruption !== null) corrupted++;
      else run.finish();
      if (i % 100_000 < PER_HEAP && i >= 100_000 && i % PER_HEAP === 0) {
        process.stderr.write(`  ${preset.name}: ${i} steps; ${heaps} heaps, ${corrupted} reported corruption\n`);
      }
      run = new ModelRun(preset.options, runOptions);
      heaps++;
    }
  }
  run.finish();
  const seconds = (performance.now() - started) / 1000;
  console.log(`soak ${preset.name}: ${ops} ops, seed ${seed}, ${heaps} heaps (${corrupted} reported ERR_HEAP_CORRUPTED), ${seconds.toFixed(1)} s: every check passed`);
}
