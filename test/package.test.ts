// The npm package as users get it: `npm pack` holds only what they need, and the tarball, installed
// into a fresh project, works from ES modules, from CommonJS (require of an ES module), from the
// command line, and type-checks a TypeScript consumer. The consumers run on the runtime that runs
// this suite, so CI's runs on Node 20, Node 22 and Bun each check it there.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../../', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string; version: string; exports: Record<string, string | { types: string; default: string }>; engines: { node: string };
};

/** npm itself runs on the machine's Node even when this suite runs on Bun (`bun --bun` puts itself first as `node`). */
function npm(args: string[], cwd: string): string {
  const path = (process.env.PATH ?? '').split(':').filter((dir) => !/bun-node|\.bun/.test(dir)).join(':');
  return execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, PATH: path }, stdio: ['ignore', 'pipe', 'pipe'] });
}

const work = mkdtempSync(join(tmpdir(), 'ffi-heap-pack-'));
const project = join(work, 'consumer');
let packed: { filename: string; files: { path: string }[] }[] = [];

test.before(() => {
  // lib/ is built by `npm test`'s pretest; packing must not rebuild it from here.
  packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root)) as typeof packed;
});

function run(args: string[]): string {
  const { FORCE_COLOR: _, ...env } = process.env; // uvu's, which would colour console.log's numbers
  const child = spawnSync(process.execPath, args, { cwd: project, encoding: 'utf8', env });
  assert.is(child.status, 0, `${args.join(' ')}: ${child.stderr}`);
  return child.stdout;
}

test('npm pack holds the compiled JavaScript, its types, README, LICENSE and package.json, nothing else', () => {
  const files = packed[0]!.files.map((f) => f.path).sort();
  const other = files.filter((f) => !/^lib\/.+\.(js|d\.ts)$/.test(f));
  assert.equal(other, ['LICENSE', 'README.md', 'package.json']);
  for (const entry of ['lib/index.js', 'lib/index.d.ts', 'lib/interop/sqlite.js', 'lib/interop/zlib.d.ts', 'lib/cli/main.js']) {
    assert.ok(files.includes(entry), `${entry} is in the package`);
  }
  assert.ok(!files.some((f) => f.startsWith('lib/') && f.endsWith('.js') && readFileSync(join(root, f), 'utf8').includes('sourceMappingURL')),
    'no compiled file points at a source map the package does not hold');
});

test('every export has types, and the engines field names Node 20', () => {
  for (const [path, target] of Object.entries(manifest.exports)) {
    if (path === './package.json') continue;
    assert.type(target, 'object', `${path} has conditions`);
    const { types, default: js } = target as { types: string; default: string };
    assert.ok(types.endsWith('.d.ts') && js.endsWith('.js'), `${path}: types then default`);
    assert.equal(Object.keys(target as object), ['types', 'default'], `${path}: types comes first, as TypeScript needs`);
  }
  assert.is(manifest.engines.node, '>=20');
});

test('installed from the tarball into a fresh project', () => {
  rmSync(project, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  npm(['install', join(work, packed[0]!.filename), '@types/node@20', '--prefer-offline', '--no-audit', '--no-fund'], project);
  const installed = JSON.parse(readFileSync(join(project, 'node_modules/ffi-heap/package.json'), 'utf8')) as { version: string };
  assert.is(installed.version, manifest.version);
  // koffi is a peer dependency: npm installs it beside ffi-heap, for the program and ffi-heap to share.
  const koffi = JSON.parse(readFileSync(join(project, 'node_modules/koffi/package.json'), 'utf8')) as { version: string };
  assert.match(koffi.version, /^3\./);
});

test('a program whose koffi is koffi 2 gets a clear error from ffi-heap, not a crash', () => {
  const old = join(work, 'koffi2');
  execFileSync('mkdir', ['-p', old]);
  writeFileSync(join(old, 'package.json'), JSON.stringify({ name: 'old-koffi', version: '1.0.0', private: true }));
  // Without --legacy-peer-deps npm refuses the install itself (the peer range is ^3).
  npm(['install', 'koffi@2', join(work, packed[0]!.filename), '--legacy-peer-deps', '--prefer-offline', '--no-audit', '--no-fund'], old);
  const { FORCE_COLOR: _, ...env } = process.env;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('ffi-heap');"], { cwd: old, encoding: 'utf8', env });
  assert.is(child.signal, null, 'not a crash');
  assert.is.not(child.status, 0);
  assert.match(child.stderr, /ffi-heap needs koffi 3, and the koffi this program loads is 2\.\d+\.\d+: install koffi 3 beside ffi-heap/);
});

test('imported from an ES module, every entry point', () => {
  const out = run(['--input-type=module', '-e', `
import { Heap } from 'ffi-heap';
import { installSqliteAllocator } from 'ffi-heap/sqlite';
import { zlibAllocator, loadZlib, deflateInHeap, inflateInHeap } from 'ffi-heap/zlib';
const heap = new Heap();
const allocator = zlibAllocator(heap);
const zlib = loadZlib();
const text = new TextEncoder().encode('packed and installed '.repeat(100));
const back = inflateInHeap(zlib, allocator, deflateInHeap(zlib, allocator, text));
console.log(typeof installSqliteAllocator, back.length, heap.stats().inUse);
allocator.release();`]);
  assert.is(out, 'function 2100 0\n');
});

test('required from CommonJS (require of an ES module, Node 20.19+, 22.12+ and Bun)', () => {
  const out = run(['-e', `
const { Heap, HeapError } = require('ffi-heap');
const heap = new Heap({ preset: 'classic' });
const p = heap.malloc(100, 'from require');
try { heap.free(p + 8); } catch (e) { console.log(e instanceof HeapError, e.code); }
heap.free(p);
console.log(heap.stats().usedBlocks);`]);
  assert.is(out, 'true ERR_INVALID_POINTER\n0\n');
});

test('the README\'s quick starts run in the fresh project, on this runtime', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Quick starts'), readme.indexOf('\n## API'));
  const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
  let ran = 0;
  for (const [i, m] of [...section.matchAll(/```(js(?: bun)?)\n([\s\S]*?)```/g)].entries()) {
    if (m[1] === 'js bun' && !isBun) continue;
    writeFileSync(join(project, `quick-start-${i}.mjs`), m[2]!);
    assert.ok(run([`quick-start-${i}.mjs`]).length > 0, `quick start ${i} printed something`);
    ran++;
  }
  assert.is(ran, isBun ? 4 : 3);
  // The benchmarker's: shell commands through the installed package's bin.
  const shell = /### Benchmarking\n\n```sh\n([\s\S]*?)```/.exec(section)![1]!.trim().split('\n');
  assert.is(shell.length, 2);
  for (const line of shell) {
    // As npm() runs: npx on the machine's Node, also when this suite runs on Bun.
    const path = (process.env.PATH ?? '').split(':').filter((dir) => !/bun-node|\.bun/.test(dir)).join(':');
    const child = spawnSync('sh', ['-c', line], { cwd: project, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PATH: path } });
    assert.is(child.status, 0, `${line}: ${child.stderr}`);
  }
  assert.match(readFileSync(join(project, 'random.rep'), 'utf8'), /^\d+\n/);
  // The viewer's: a trace, then its page.
  const view = /### Seeing the heap move: the viewer\n\n```sh\n([\s\S]*?)```/.exec(section)![1]!.trim().split('\n');
  assert.is(view.length, 2);
  for (const line of view) {
    const path = (process.env.PATH ?? '').split(':').filter((dir) => !/bun-node|\.bun/.test(dir)).join(':');
    const child = spawnSync('sh', ['-c', line], { cwd: project, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PATH: path } });
    assert.is(child.status, 0, `${line}: ${child.stderr}`);
  }
  assert.match(readFileSync(join(project, 'fits.html'), 'utf8'), /<script type="application\/json" id="view-data">/);
});

test('the command line runs from the installed package', () => {
  const cli = join(project, 'node_modules/ffi-heap/lib/cli/main.js');
  const out = run([cli, 'help']);
  assert.match(out, /usage: ffi-heap <command>/);
  assert.match(out, /\n  replay +replay allocation traces/);
  assert.is(run([cli, '--version']), `ffi-heap ${manifest.version}\n`);
  // A peer allocator whose package the project lacks: one line, not a stack trace.
  writeFileSync(join(project, 'small.rep'), run([cli, 'gen-trace', 'churn', '--ops', '50']));
  const { FORCE_COLOR: _, ...env } = process.env;
  const thing = spawnSync(process.execPath, [cli, 'replay', '--allocator', 'thing', 'small.rep'], { cwd: project, encoding: 'utf8', env });
  assert.is(thing.status, 1);
  assert.match(thing.stderr, /\nffi-heap replay: the 'thing' allocator needs the @thi\.ng\/malloc package: npm install @thi\.ng\/malloc\n$/);
  assert.not.match(thing.stderr, /\n\s+at /, 'no stack trace');
});

test('a TypeScript consumer type-checks against the published types', () => {
  writeFileSync(join(project, 'index.ts'), `
import { Heap, HeapError, type HeapStats } from 'ffi-heap';
import { installSqliteAllocator, type SqliteAllocator } from 'ffi-heap/sqlite';
import { zlibAllocator, type ZlibAllocator } from 'ffi-heap/zlib';
const heap: Heap = new Heap({ preset: 'fast', limit: 1 << 20 });
const p: number = heap.malloc(64);
const doubles: Float64Array = heap.view(p, Float64Array, 8);
const second: number = heap.decode<number>(BigInt(p) + 8n, 'int32_t');
heap.free(BigInt(heap.malloc(8)));
const stats: HeapStats = heap.stats();
const z: ZlibAllocator = zlibAllocator(heap);
const install: (heap: Heap) => SqliteAllocator = installSqliteAllocator;
const error: HeapError | undefined = undefined;
console.log(doubles.length, second, stats.inUse, z.zalloc, install, error);
`);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] },
    files: ['index.ts'],
  }));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const check = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stdout + check.stderr);
  // And a type error is caught, so the check above can fail.
  writeFileSync(join(project, 'index.ts'), `import { Heap } from 'ffi-heap';\nconst p: string = new Heap().malloc(64);\nconsole.log(p);\n`);
  const bad = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stdout, /Type 'number' is not assignable to type 'string'/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
