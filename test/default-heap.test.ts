// The top-level functions, the environment variables that configure them, and the command line.
// Each case runs in a child process, since the default heap is made once per process.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const entry = new URL('../src/index.js', import.meta.url).href;
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(script: string, env: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', `import * as h from ${JSON.stringify(entry)};\n${script}`], {
    encoding: 'utf8',
    env: { ...process.env, ALLOCATOR_ALGORITHM: '', ALLOCATOR_SCRIBBLE: '', ALLOCATOR_LEAK_CHECK: '', ALLOCATOR_PRESET: '', ...env },
  });
  return { stdout: child.stdout, stderr: child.stderr, status: child.status };
}

/** The DESIGN.md example on the default heap; prints which block '6' went to. */
const EXAMPLE = `
const p = [100, 10, 100, 100, 100, 3100].map((n, i) => h.malloc(n, 'Test Allocation: ' + i));
h.free(p[1]); h.free(p[3]);
const six = h.malloc(10, 'Test Allocation: 6');
console.log(six === p[1] ? 'hole' : six === p[3] ? 'split' : 'tail');
`;

const CLASSIC = { ALLOCATOR_PRESET: 'classic' };

test('the default heap runs the fast preset unless ALLOCATOR_PRESET says otherwise', () => {
  const script = `h.malloc(1); console.log(h.defaultHeap().preset);`;
  assert.is(run(script).stdout.trim(), 'fast');
  assert.is(run(script, CLASSIC).stdout.trim(), 'classic');
  assert.is(run(script, { ALLOCATOR_PRESET: 'fast' }).stdout.trim(), 'fast');
});

test('the top-level functions use one default heap; the classic preset uses first fit by default', () => {
  const out = run(EXAMPLE, CLASSIC);
  assert.is(out.status, 0, out.stderr);
  assert.is(out.stdout.trim(), 'tail');
});

test('ALLOCATOR_ALGORITHM picks the classic free-space search', () => {
  assert.is(run(EXAMPLE, { ...CLASSIC, ALLOCATOR_ALGORITHM: 'best_fit' }).stdout.trim(), 'hole');
  assert.is(run(EXAMPLE, { ...CLASSIC, ALLOCATOR_ALGORITHM: 'worst_fit' }).stdout.trim(), 'split');
});

test('ALLOCATOR_SCRIBBLE=1 fills new blocks with 0xAA', () => {
  const script = `const p = h.malloc(32); console.log([...h.defaultHeap().bytes(p, 32)].every((b) => b === 0xaa));`;
  assert.is(run(script, { ALLOCATOR_SCRIBBLE: '1' }).stdout.trim(), 'true');
  assert.is(run(script).stdout.trim(), 'false');
});

test('ALLOCATOR_LEAK_CHECK=1 prints the leak report at exit', () => {
  const script = `h.malloc(100, 'leaked'); const q = h.malloc(10, 'freed'); h.free(q); h.calloc(4, 4, 'also leaked');`;
  const out = run(script, { ...CLASSIC, ALLOCATOR_LEAK_CHECK: '1' });
  assert.is(out.status, 0, out.stderr);
  assert.match(out.stdout, /^-- Leak Check --\n\[BLOCK 0x[0-9a-f]+\] 176\t'leaked'\n\[BLOCK 0x[0-9a-f]+\] 80\t'also leaked'\n\n-- Summary --\n2 blocks lost \(256 bytes\)\n$/);
  assert.is(run(script, CLASSIC).stdout, '', 'no report without the variable');
  const fast = run(script, { ALLOCATOR_LEAK_CHECK: '1' });
  assert.match(fast.stdout, /\n2 blocks lost \(128 bytes\)\n$/, 'the fast preset: slots of 112 and 16 bytes');
});

test('printMemory writes the print_memory text to standard output', () => {
  const out = run(`h.malloc(100, 'shown'); h.printMemory();`, CLASSIC);
  assert.match(out.stdout, /^-- Current Memory State --\n\[REGION 0x[0-9a-f]+\]\n  \[BLOCK 0x[0-9a-f]+-0x[0-9a-f]+\] 176\t\[USED\]\t'shown'\n/);
  assert.match(out.stdout, /\n-- Free List --\n\[0x[0-9a-f]+\] -> NULL\n$/);
});

test('a bad environment value is refused with a message naming the variable', () => {
  const out = run(`h.malloc(1);`, { ALLOCATOR_ALGORITHM: 'fastest_fit' });
  assert.is.not(out.status, 0);
  assert.match(out.stderr, /ALLOCATOR_ALGORITHM must be one of 'first_fit', 'best_fit', 'worst_fit'/);
  assert.match(run(`h.malloc(1);`, { ALLOCATOR_SCRIBBLE: 'yes' }).stderr, /ALLOCATOR_SCRIBBLE must be 1 or 0/);
  assert.match(run(`h.malloc(1);`, { ALLOCATOR_PRESET: 'turbo' }).stderr, /ALLOCATOR_PRESET must be one of/);
});

test('`ffi-heap demo` tours the allocator and ends with an empty heap', () => {
  const out = spawnSync(process.execPath, [cli, 'demo'], { encoding: 'utf8' });
  assert.is(out.status, 0, out.stderr);
  const steps = out.stdout.split('\n## ').slice(1);
  assert.ok(steps.length >= 6, 'one printout per step');
  for (const step of steps) assert.match(step, /-- Current Memory State --\n[\s\S]*-- Free List --\n.*NULL\n/);
  assert.match(steps[steps.length - 1]!, /-- Current Memory State --\n\n-- Free List --\nNULL\n/);
  assert.match(out.stdout, /mmap calls: 2, munmap calls: 2/);
});

test('the command line explains itself and refuses unknown commands', () => {
  const help = spawnSync(process.execPath, [cli, 'help'], { encoding: 'utf8' });
  assert.is(help.status, 0);
  assert.match(help.stdout, /usage: ffi-heap <command>/);
  const bad = spawnSync(process.execPath, [cli, 'frobnicate'], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /unknown command 'frobnicate'/);
});

test.run();
