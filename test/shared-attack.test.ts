// Two short rounds of the shared-heap attack (./shared-attack.ts, `npm run stress:shared` runs it
// for as long as asked): workers making random calls on each other's blocks, terminated at random
// moments, then the heap destroyed under them. Run in a child process with a timeout, so that a
// heap that hung fails here instead of hanging the suite.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const script = fileURLToPath(new URL('./shared-attack.js', import.meta.url));
// Under Bun, as in ./shared-ends.test.ts: terminated workers' threads would pile up in Bun's teardown.
const env = process.versions.bun === undefined ? process.env : { ...process.env, BUN_JSC_useConcurrentJIT: '0' };

test('the shared-heap attack: workers terminated among cross-thread frees and reallocs lose no live block, and destroy() ends every worker\'s calls', () => {
  const rounds = 2;
  const run = spawnSync(process.execPath, [script, '--rounds', String(rounds), '--workers', '4', '--round-ms', '800', '--seed', '3', '--json'], {
    encoding: 'utf8', timeout: 180_000, env,
  });
  if (run.error !== undefined) throw new Error(`the attack: ${run.error.message} (a hang ends in a timeout here)\n${run.stdout}\n${run.stderr}`);
  const line = run.stdout.trim().split('\n').pop() ?? '';
  let r: { findings: string[]; terminations: number; lostPlaces: number; usedBlocks: number; reclaimed: number; open: number; sawDestroyed: number };
  try {
    r = JSON.parse(line) as typeof r;
  } catch {
    throw new Error(`the attack: exit ${run.status} ${run.signal ?? ''}, no summary\n${run.stdout}\n${run.stderr}`);
  }
  assert.equal(r.findings, [], 'every held block kept its size and pattern, check() passed, nothing hung');
  assert.is(run.status, 0);
  assert.ok(r.terminations >= rounds, `workers were terminated (${r.terminations})`);
  assert.ok(r.reclaimed >= r.terminations, `every terminated worker's heap was reclaimed (${r.reclaimed} of ${r.terminations})`);
  assert.is(r.open, 1, 'only the main thread\'s heap is open at the end');
  assert.ok(r.usedBlocks <= r.lostPlaces, `after the frees, only blocks of calls cut short stay in use (${r.usedBlocks}, at most ${r.lostPlaces})`);
  assert.is(r.sawDestroyed, 4, 'every worker of the last round saw ERR_HEAP_DESTROYED');
});

test.run();
