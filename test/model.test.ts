// The model's spread checks (RunOptions.verifyWindow and checkEvery, which the soak uses): a live
// block that lost a byte is still found, within one turn of the window and at finish.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModelFailure, ModelRun } from './model.js';

const BLOCKS = 40;
const WINDOW = 4;

/** A run holding BLOCKS live blocks, with the soak's kind of options, and one of them damaged. */
function damagedRun(): ModelRun {
  const run = new ModelRun({ preset: 'fast' }, { verifyWindow: WINDOW, checkEvery: 8 });
  assert.ok(run.step({ kind: 'burst', count: BLOCKS, size: 100 }));
  assert.is(run.liveBlocks, BLOCKS);
  const victim = run.liveAddresses[BLOCKS / 2]!;
  const byte = run.heap.bytes(victim, 1);
  byte[0] = byte[0]! ^ 0xff;
  return run;
}

test('a window of live blocks a step still finds a damaged block within one turn of the window', () => {
  const run = damagedRun();
  let steps = 0;
  try {
    while (steps <= BLOCKS / WINDOW) {
      steps++;
      run.step({ kind: 'check' });
    }
  } catch (error) {
    assert.instance(error, ModelFailure);
    assert.match((error as Error).message, 'lost its bytes');
  } finally {
    run.dispose();
  }
  assert.ok(steps <= BLOCKS / WINDOW, `found after ${steps} steps`);
});

test('finish proves every live block, whatever the window', () => {
  const run = damagedRun();
  try {
    assert.throws(() => run.finish(), (error: unknown) => error instanceof ModelFailure && /lost its bytes/.test((error as Error).message));
  } finally {
    run.dispose();
  }
});

test.run();
