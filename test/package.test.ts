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

test('the command line runs from the installed package', () => {
  const out = run([join(project, 'node_modules/ffi-heap/lib/cli/main.js'), 'help']);
  assert.match(out, /usage: ffi-heap <command>/);
  assert.match(out, /\n  replay +replay allocation traces/);
});

test('a TypeScript consumer type-checks against the published types', () => {
  writeFileSync(join(project, 'index.ts'), `
import { Heap, HeapError, type HeapStats } from 'ffi-heap';
import { installSqliteAllocator, type SqliteAllocator } from 'ffi-heap/sqlite';
import { zlibAllocator, type ZlibAllocator } from 'ffi-heap/zlib';
const heap: Heap = new Heap({ preset: 'fast', limit: 1 << 20 });
const p: number = heap.malloc(64);
const doubles: Float64Array = heap.view(p, Float64Array, 8);
const stats: HeapStats = heap.stats();
const z: ZlibAllocator = zlibAllocator(heap);
const install: (heap: Heap) => SqliteAllocator = installSqliteAllocator;
const error: HeapError | undefined = undefined;
console.log(doubles.length, stats.inUse, z.zalloc, install, error);
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
