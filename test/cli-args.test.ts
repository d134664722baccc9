// The command line: --help and --version, and one-line errors with exit code 2 for a command
// line that cannot run (a count it could never finish is refused at once).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 });

test('--version prints the package\'s version; every command takes --help', () => {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = run(flag);
    assert.is(r.status, 0);
    assert.is(r.stdout, `ffi-heap ${manifest.version}\n`);
  }
  for (const command of ['demo', 'replay', 'gen-trace']) {
    const r = run(command, '--help');
    assert.is(r.status, 0, `${command} --help`);
    assert.match(r.stdout, new RegExp(`^usage: ffi-heap ${command} `));
    assert.is(r.stderr, '');
  }
});

test('bad command lines are one line on stderr with exit code 2, never a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['demo', '--preset', 'turbo'], /^ffi-heap demo: --preset must be classic or fast, got 'turbo'\n$/],
    [['demo', '--algorithm', 'next_fit'], /^ffi-heap demo: --algorithm must be one of first_fit, best_fit, worst_fit, got 'next_fit'\n$/],
    [['demo', '--preset', 'fast', '--algorithm', 'best_fit'], /^ffi-heap demo: --algorithm picks the classic preset's search/],
    [['demo', '--colour'], /^ffi-heap demo: Unknown option '--colour'.*\n\(ffi-heap demo --help lists the options\)\n$/],
    [['replay', '--repeat', 'x', 'trace.rep'], /^ffi-heap replay: --repeat must be a whole number of at least 1, got 'x'\n$/],
    [['replay', '--warmup', 'x', 'trace.rep'], /^ffi-heap replay: --warmup must be a number of milliseconds, at least 0, got 'x'\n$/],
    [['replay', '--warmup=-1', 'trace.rep'], /^ffi-heap replay: --warmup must be a number of milliseconds, at least 0, got '-1'\n$/],
    [['replay', '--allocator', 'nothing', 'trace.rep'], /^ffi-heap replay: unknown allocator 'nothing'/],
    [['frobnicate'], /^ffi-heap: unknown command 'frobnicate' \(ffi-heap --help lists the commands\)\n$/],
  ];
  for (const [args, expected] of cases) {
    const r = run(...args);
    assert.is(r.status, 2, args.join(' '));
    assert.match(r.stderr, expected, args.join(' '));
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    assert.is(r.stdout, '');
  }
});

test('demo tours the classic preset with the fit asked for, or the fast preset', () => {
  const best = run('demo', '--algorithm', 'best_fit');
  assert.is(best.status, 0, best.stderr);
  assert.match(best.stdout, /^ffi-heap tour: the classic preset, best fit\./);
  const fast = run('demo', '--preset', 'fast');
  assert.is(fast.status, 0, fast.stderr);
  assert.match(fast.stdout, /^ffi-heap tour: the fast preset/);
  assert.is(fast.stdout.match(/^## /gm)?.length, 8);
  assert.match(fast.stdout, /## free\(c\)\n/);
});

test.run();
