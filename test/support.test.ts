// Unsupported places fail at construction with a sentence naming the reason: another platform, or
// a runtime that forbids ArrayBuffers over native memory (Electron's V8 memory cage). Each case
// runs in a child process, which fakes the condition before its first heap.

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { platformProblem } from '../src/os/libc.js';
import { viewProblem } from '../src/os/support.js';

const entry = new URL('../src/index.js', import.meta.url).href;

function child(setup: string): { status: number | null; out: string; err: string } {
  const source = `${setup}\nconst { Heap } = await import(${JSON.stringify(entry)});\n` +
    `try { const heap = new Heap(); heap.free(heap.malloc(8)); console.log('made a heap'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8' });
  return { status: run.status, out: run.stdout, err: run.stderr };
}

test('the supported platforms are 64-bit Linux and macOS', () => {
  assert.is(platformProblem('linux', 'x64'), undefined);
  assert.is(platformProblem('linux', 'arm64'), undefined);
  assert.is(platformProblem('darwin', 'arm64'), undefined);
  assert.match(platformProblem('win32', 'x64') ?? '', /64-bit Linux and macOS.*win32 on x64/);
  assert.match(platformProblem('linux', 'ia32') ?? '', /linux on ia32/);
  assert.match(platformProblem('freebsd', 'x64') ?? '', /freebsd/);
});

test('a view that the runtime refuses is named, with Electron when it is Electron', () => {
  assert.is(viewProblem(() => {}, undefined), undefined);
  const refuse = (): void => {
    throw new Error('External buffers are not allowed');
  };
  assert.match(viewProblem(refuse, '33.2.0') ?? '', /Electron build \(33\.2\.0\).*memory cage.*External buffers are not allowed/);
  assert.match(viewProblem(refuse, undefined) ?? '', /cannot make an ArrayBuffer over native memory/);
});

test('new Heap() on another platform throws, naming it', () => {
  // koffi picks its native module by platform when it loads, so the platform changes after that.
  const run = child(`await import('koffi'); await import(${JSON.stringify(entry)}); Object.defineProperty(process, 'platform', { value: 'win32' });`);
  assert.is(run.status, 0, run.err);
  assert.match(run.out, /^Error: ffi-heap runs on 64-bit Linux and macOS.*this is win32 on x64/);
});

test('new Heap() where native views are refused throws, naming Electron', () => {
  const run = child(`const koffi = (await import('koffi')).default;
koffi.view = () => { throw new Error('External buffers are not allowed'); };
Object.defineProperty(process.versions, 'electron', { value: '33.2.0' });`);
  assert.is(run.status, 0, run.err);
  assert.match(run.out, /^Error: this Electron build \(33\.2\.0\) forbids ArrayBuffers over native memory/);
});

test('here, a heap is made', () => {
  const run = child('');
  assert.is(run.status, 0, run.err);
  assert.is(run.out, 'made a heap\n');
});

test.run();
