// npm run soak -- [--ops N] [--seed S] [--preset fast|classic]
// The property test's random workload, for as long as asked, with a summary at the end.

import { parseArgs } from 'node:util';
import { random } from '../src/debug/random.js';
import { ModelRun } from './model.js';

const { values } = parseArgs({
  options: { ops: { type: 'string' }, seed: { type: 'string' }, preset: { type: 'string' } },
});
const ops = Number(values.ops ?? 1_000_000);
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const presets = values.preset === undefined ? (['fast', 'classic'] as const) : [values.preset as 'fast' | 'classic'];
if (!Number.isSafeInteger(ops) || ops < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run soak -- [--ops N] [--seed S] [--preset fast|classic]');
  process.exit(2);
}

for (const preset of presets) {
  const next = random(seed);
  const int = (): number => Math.floor(next() * 2 ** 31);
  const started = performance.now();
  let run = new ModelRun(preset);
  for (let i = 1; i <= ops; i++) {
    // The same stream of steps as the property test's program for this seed.
    run.step([Math.floor(next() * 100), int(), int()]);
    // A fresh heap now and then, so that growth, trimming and teardown are soaked too.
    if (i % 100_000 === 0) {
      const counts = run.counts;
      run.finish();
      process.stderr.write(`  ${preset}: ${i} steps; the last 100000: ${JSON.stringify(counts)}\n`);
      run = new ModelRun(preset);
    }
  }
  run.finish();
  const seconds = (performance.now() - started) / 1000;
  console.log(`soak ${preset}: ${ops} steps, seed ${seed}, ${seconds.toFixed(1)} s: every check passed`);
}
