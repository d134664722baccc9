// The examples run, and print what they promise.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const run = (name: string): string => {
  const child = spawnSync(process.execPath, [examples + name], { encoding: 'utf8' });
  assert.is(child.status, 0, `${name}: ${child.stderr}`);
  return child.stdout;
};

test('qsort-doubles: C sorts the heap array', () => {
  const out = run('qsort-doubles.mjs');
  const before = /before: (.*)/.exec(out)![1]!.split(' ').map(Number);
  const sorted = /sorted: (.*)/.exec(out)![1]!.split(' ').map(Number);
  assert.equal(sorted, [...before].sort((a, b) => a - b));
});

test('structs: the records come back sorted by key', () => {
  const out = run('structs.mjs');
  const keys = [...out.matchAll(/key: (\d+)/g)].map((m) => Number(m[1]));
  assert.is(keys.length, 5);
  assert.equal(keys, [...keys].sort((a, b) => a - b));
  assert.match(out, /blocks in use inside the scope: 1\nblocks in use after it: 0\n$/);
});

test('sqlite-session: the heap holds SQLite while it runs and nothing after shutdown', () => {
  const out = run('sqlite-session.mjs');
  assert.match(out, /50,000 rows inserted +\d+ blocks, +\d+ bytes in use/);
  assert.match(out, /after sqlite3_shutdown +0 blocks, +0 bytes in use/);
});

test('zlib-roundtrip: zlib\'s state is in the heap while the stream is open, and all of it is freed', () => {
  const out = run('zlib-roundtrip.mjs');
  const before = Number(/before deflateInit +(\d+) blocks/.exec(out)![1]);
  const open = Number(/stream open +(\d+) blocks/.exec(out)![1]);
  assert.ok(open >= before + 3, `deflateInit allocated in the heap: ${before} -> ${open} blocks`);
  assert.match(out, /after deflateEnd +3 blocks/);
  assert.match(out, /inflated to 64000, identical: true/);
  assert.match(out, /all freed +0 blocks, 0 bytes in use/);
});

test.run();
