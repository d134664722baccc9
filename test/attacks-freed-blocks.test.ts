// Writes after free, in every preset: many values written into each of a freed block's first words,
// each followed by each kind of call, every case in a child process (see attacks/harness.ts). A test
// passes when none of its cases crashed, hung, threw anything but ERR_HEAP_CORRUPTED or changed a
// live block.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WITH_FITS as PRESETS } from './presets.js';
import { GROUPS } from './attacks/groups.js';
import { byTest, explain, runBatches, type Batch } from './attacks/harness.js';

const groups = Object.keys(GROUPS).filter((g) => g.startsWith('write-after-free-'));
const batches: Batch[] = PRESETS.flatMap((p) => groups.map((group) => ({ group, preset: p.name })));
const started = Date.now();
const results = await runBatches(batches);
if (process.env.ATTACK_TIMING) console.log(`write-after-free: ${batches.length} batches in ${((Date.now() - started) / 1000).toFixed(1)} s`);

for (const preset of PRESETS) {
  const test = suite(`write after free: ${preset.name}`);
  const mine = results.filter((_, k) => batches[k]!.preset === preset.name).flat();
  for (const [name, cases] of byTest(mine)) {
    test(name, () => {
      assert.ok(cases.length > 0);
      assert.ok(cases.every((r) => r.outcome === 'passed'), explain(cases));
    });
  }
  test.run();
}
