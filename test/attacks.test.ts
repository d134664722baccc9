// The attack suite beyond writes after free (see attacks/misc.ts, attacks/shared.ts and
// attacks/interop.ts for the cases), in every preset, each case in a child process so that a crash
// or a hang fails its test instead of ending the suite.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WITH_FITS as PRESETS, presetNamed } from './presets.js';
import { GROUPS } from './attacks/groups.js';
import { byTest, explain, runBatches, type Batch } from './attacks/harness.js';

const batches: Batch[] = PRESETS.flatMap((p) => [
  { group: 'misc', preset: p.name },
  { group: 'shared', preset: p.name },
  { group: 'zlib', preset: p.name },
  { group: 'sqlite', preset: p.name, alone: true },
]).filter((b) => GROUPS[b.group]!(presetNamed(b.preset)).length > 0);
const started = Date.now();
const results = await runBatches(batches);
if (process.env.ATTACK_TIMING) console.log(`attacks: ${batches.length} batches in ${((Date.now() - started) / 1000).toFixed(1)} s`);

for (const preset of PRESETS) {
  const test = suite(`attacks: ${preset.name}`);
  const mine = results.filter((_, k) => batches[k]!.preset === preset.name).flat();
  for (const [name, cases] of byTest(mine)) {
    test(name, () => {
      assert.ok(cases.length > 0);
      assert.ok(cases.every((r) => r.outcome === 'passed'), explain(cases));
    });
  }
  test.run();
}
