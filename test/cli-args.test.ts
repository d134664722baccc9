// The command line refuses a count it could never finish, at once, with exit code 2.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_OPS, generateTrace } from '../src/trace/generate.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

test('gen-trace refuses --ops beyond MAX_OPS (1e12 once ran until memory ran out) and other bad counts', () => {
  for (const ops of ['1e12', String(MAX_OPS + 1), 'Infinity', 'abc', '0', '2.5']) {
    const run = spawnSync(process.execPath, [cli, 'gen-trace', 'random', '--ops', ops], { encoding: 'utf8', timeout: 20_000 });
    assert.is(run.signal, null, `--ops ${ops}: ended by ${run.signal}`);
    assert.is(run.status, 2, `--ops ${ops}`);
    assert.match(run.stderr, /^ffi-heap gen-trace: --ops must be a whole number from 1 to 10000000, got /);
    assert.is(run.stdout, '');
  }
  assert.throws(() => generateTrace('random', MAX_OPS + 1, 1), (e: unknown) => e instanceof RangeError);
  assert.ok(generateTrace('random', 10, 1).kinds.length > 0);
});

test.run();
