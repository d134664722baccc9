// Running out of memory: a heap's own limit and the kernel's refusal both make malloc, calloc and
// realloc return 0 (or throw ERR_OUT_OF_MEMORY, by option), with the heap unchanged; for every
// entry of PRESETS (./presets.ts), in this process and in children under a virtual-memory limit.

import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HeapError } from '../src/index.js';
import { checkPattern, fillPattern } from './helpers.js';
import { makeHeap, PRESETS } from './presets.js';

const KiB = 1024;
const MiB = 1024 * KiB;

for (const preset of PRESETS) {
  const test = suite(`${preset.name} preset`);

  test('a limit caps the bytes mapped; past it malloc, calloc and realloc return 0 and change nothing', () => {
    const heap = makeHeap(preset, { limit: MiB });
    const blocks: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const p = heap.malloc(60 * KiB);
      if (p === 0) break;
      fillPattern(heap, p, 60 * KiB, p);
      blocks.push(p);
      assert.ok(heap.stats().mapped <= MiB, `mapped ${heap.stats().mapped}`);
    }
    assert.ok(blocks.length >= 8 && blocks.length < 1000, `${blocks.length} blocks fit`);
    const before = heap.formatMemory();
    const stats = heap.stats();
    assert.is(heap.malloc(60 * KiB), 0);
    assert.is(heap.calloc(60, KiB), 0);
    assert.is(heap.realloc(blocks[0]!, 2 * MiB), 0, 'a realloc that cannot grow fails');
    assert.is(heap.formatMemory(), before);
    assert.equal(heap.stats(), stats);
    for (const p of blocks) assert.is(checkPattern(heap, p, 60 * KiB, p), -1);
    heap.check();
    heap.free(blocks.pop()!);
    if (preset.debugChecks) heap.trim(); // the quarantine holds the freed block until it is emptied
    assert.ok(heap.malloc(60 * KiB) !== 0, 'freed room is usable again');
    heap.destroy();
  });

  test('throwOnOutOfMemory turns those zeros into ERR_OUT_OF_MEMORY, still changing nothing', () => {
    const heap = makeHeap(preset, { limit: 256 * KiB, throwOnOutOfMemory: true });
    const p = heap.malloc(100 * KiB);
    fillPattern(heap, p, 100 * KiB, 3);
    const before = heap.formatMemory();
    for (const attempt of [() => heap.malloc(MiB), () => heap.calloc(MiB, 1), () => heap.realloc(p, MiB), () => heap.calloc(2 ** 40, 2 ** 40)]) {
      assert.throws(attempt, (e: Error) => e instanceof HeapError && e.code === 'ERR_OUT_OF_MEMORY' && /no memory for [\d ×]+ bytes/.test(e.message));
    }
    assert.is(heap.formatMemory(), before);
    assert.is(checkPattern(heap, p, 100 * KiB, 3), -1);
    heap.check();
    heap.destroy();
  });

  test.run();
}

const misc = suite('out of memory');

misc('limit options are checked', () => {
  assert.throws(() => new Heap({ limit: -1 }), (e: Error) => e instanceof RangeError);
  assert.throws(() => new Heap({ limit: 1.5 }), (e: Error) => e instanceof RangeError);
  assert.throws(() => new Heap({ limit: '1' as unknown as number }), (e: Error) => e instanceof TypeError);
  assert.throws(() => new Heap({ throwOnOutOfMemory: 1 as unknown as boolean }), (e: Error) => e instanceof TypeError);
  assert.is(new Heap({ limit: 0 }).malloc(1), 0);
});

// The child fills a heap with 16 MiB blocks until malloc returns 0, under a virtual-memory limit a
// little above what Node itself takes, so that the kernel's mmap fails for real. It frees a few
// blocks at once after that, so that V8, which shares the limit, has room to go on.
const CHILD = `
const { Heap, HeapError } = await import(process.argv[1]);
const BLOCK = 16 << 20;
const out = {};
for (const [preset, options] of JSON.parse(process.argv[2])) {
  const heap = new Heap(options);
  const blocks = [];
  let zero = false;
  for (let i = 0; i < 1000; i++) {
    const p = heap.malloc(BLOCK);
    if (p === 0) { zero = true; break; }
    heap.bytes(p, 64).fill(i & 255);
    blocks.push(p);
  }
  const room = blocks.splice(-4);
  for (const p of room) heap.free(p);
  heap.check();
  const intact = blocks.every((p, i) => heap.bytes(p, 64).every((b) => b === (i & 255)));
  for (const p of blocks) heap.free(p);
  const thrower = new Heap({ ...options, throwOnOutOfMemory: true });
  const held = [];
  let code = null;
  try { for (let i = 0; i < 1000; i++) held.push(thrower.malloc(BLOCK)); } catch (e) { code = e instanceof HeapError ? e.code : String(e); }
  for (const p of held) thrower.free(p);
  heap.check();
  out[preset] = { count: blocks.length + room.length, zero, intact, code };
  heap.destroy();
  thrower.destroy();
}
console.log(JSON.stringify(out));
`;

misc('a real mmap failure (under ulimit -v) is "no memory": 0 or ERR_OUT_OF_MEMORY, never a crash', () => {
  // A fresh Node process takes about 730 MB of address space; some 450 MB more is far below what
  // 1000 blocks of 16 MiB need. (The limit is fixed, not taken from this process, whose own
  // address space the other suites have grown.)
  // Bun sizes its own start-up reservations from RLIMIT_AS and aborts in some bands (2.3 and
  // 2.5 million KiB in Bun 1.4.5, and below about 1.29 million it cannot start at all); 2 million
  // lies in a band where it starts, loads koffi and leaves room for some 25 blocks.
  const limitKiB = process.versions.bun ? 2_000_000 : 1_200_000;
  const entry = new URL('../src/index.js', import.meta.url).href;
  const presets = JSON.stringify(PRESETS.map((p) => [p.name, p.options]));
  const run = spawnSync('bash', ['-c', `ulimit -v ${limitKiB} && exec "$0" --input-type=module -e "$1" "$2" "$3"`, process.execPath, CHILD, entry, presets], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout) as Record<string, { count: number; zero: boolean; intact: boolean; code: string }>;
  for (const { name: preset } of PRESETS) {
    const r = result[preset]!;
    assert.ok(r.zero && r.count > 4 && r.count < 1000, `${preset}: ${JSON.stringify(r)}`);
    assert.ok(r.intact, `${preset}: every block kept its bytes`);
    assert.is(r.code, 'ERR_OUT_OF_MEMORY', preset);
  }
});

// The child fills a fast heap with 100 KiB blocks (below the large-block threshold) under the
// same kind of limit, so that the arena is small (the 1 GiB reservation is refused, and a half
// or a quarter taken), fills up, and the blocks after it come from mappings of their own. It stops
// at 40 such mappings, well short of the limit: with the address space used up, V8 itself may fail
// to allocate (a background compile's zone), which is the runtime's end, not the heap's.
const ARENA_FULL_CHILD = `
const { Heap } = await import(process.argv[1]);
const BLOCK = 100 * 1024;
const heap = new Heap();
const blocks = [];
for (let i = 0; i < 100000; i++) {
  const p = heap.malloc(BLOCK);
  if (p === 0) break;
  heap.bytes(p, 64).fill(i & 255);
  blocks.push(p);
  if (i % 16 === 0 && heap.stats().regions > 40) break;
}
for (const p of blocks.splice(-4)) heap.free(p);
const full = heap.stats();
heap.check();
const intact = blocks.every((p, i) => heap.bytes(p, 64).every((b) => b === (i & 255)));
for (const p of blocks) heap.free(p);
heap.check();
const after = heap.stats();
console.log(JSON.stringify({ count: blocks.length, regions: full.regions, intact, inUse: after.inUse, regionsAfter: after.regions }));
`;

misc('when the fast preset\'s arena is full, small blocks come from mappings of their own, and go back', () => {
  const limitKiB = process.versions.bun ? 2_000_000 : 1_200_000;
  const entry = new URL('../src/index.js', import.meta.url).href;
  const run = spawnSync('bash', ['-c', `ulimit -v ${limitKiB} && exec "$0" --input-type=module -e "$1" "$2"`, process.execPath, ARENA_FULL_CHILD, entry], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const r = JSON.parse(run.stdout) as { count: number; regions: number; intact: boolean; inUse: number; regionsAfter: number };
  assert.ok(r.regions > 10, `past the arena, blocks got mappings of their own: ${JSON.stringify(r)}`);
  assert.ok(r.intact, 'every block kept its bytes');
  assert.equal([r.inUse, r.regionsAfter <= 1], [0, true], 'freed, the mappings are gone and nothing is in use');
});

misc.run();
