// Attacks other than the write-after-free matrix, for every preset: a header overflow, links aimed
// at live blocks and at themselves, toSVG on many regions and with bad options, every call after
// destroy(), a scope disposed after one of its blocks was freed directly, scribbling of the bytes a
// realloc gives back, and the odd arguments issue 12 lists.

import { Heap, HeapError, type HeapOptions } from '../../src/index.js';
import type { TestPreset } from '../presets.js';
import { Broken, type AttackCase, type CaseGroup } from './case.js';
import { World, hex, poke32, poke64, raw } from './world.js';

const isClassic = (o: HeapOptions): boolean => o.preset === 'classic';

/** Runs `fn`, which must throw a HeapError with one of `codes`; says what it did instead. */
function expectCode(what: string, codes: readonly string[], fn: () => unknown): HeapError {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    if (error instanceof HeapError && codes.includes(error.code)) return error;
    throw new Broken(`${what}: expected HeapError ${codes.join(' or ')}, got ${(error as Error).name} ${String((error as { code?: unknown }).code)}: ${(error as Error).message}`);
  }
  throw new Broken(`${what}: expected HeapError ${codes.join(' or ')}, it returned ${String(result).slice(0, 80)}`);
}

function expectThrows(what: string, kinds: readonly (new (...a: never[]) => Error)[], fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (kinds.some((k) => error instanceof k)) return;
    throw new Broken(`${what}: expected ${kinds.map((k) => k.name).join(' or ')}, got ${String(error)}`);
  }
  throw new Broken(`${what}: expected ${kinds.map((k) => k.name).join(' or ')}, it returned`);
}

/** Writes a free-list link of the block whose data is at `p`: u32 offsets (fast) or u64 addresses (classic). */
function writeLinks(world: World, p: number, next: number, prev: number, base: number): void {
  if (isClassic(world.options)) {
    poke64(p, next);
    poke64(p + 8, prev);
  } else {
    poke32(p, next - base);
    poke32(p + 4, prev - base);
  }
}

function arenaBase(world: World): number {
  return isClassic(world.options) ? 0 : world.heap.snapshot().regions[0]!.address;
}

// Blocks of 1500 bytes, which have headers in every preset (and two fit one classic region): the
// fast preset's small blocks in pages have none, so an overflow between them changes a neighbour's
// bytes but no metadata.
const HEADERED = 1500;

function overflowCases(o: HeapOptions): AttackCase[] {
  const test = 'an 8-byte overflow into the next block\'s header makes its free ERR_HEAP_CORRUPTED, not ERR_DOUBLE_FREE';
  return [{
    id: 'overflow of 0x41 bytes into a live neighbour, then free(neighbour)',
    test,
    run() {
      const world = new World(o);
      const a = world.alloc(HEADERED);
      const b = world.alloc(HEADERED);
      world.alloc(100);
      const end = a + world.heap.usableSize(a);
      world.forget(a);
      raw(end, 8).fill(0x41);
      world.forget(b);
      expectCode('free(b)', ['ERR_HEAP_CORRUPTED'], () => world.heap.free(b));
      world.verify('after the refused free');
      world.end();
    },
  }, {
    id: 'overflow of 0x41 bytes into a free neighbour, then malloc of its size',
    test: 'an 8-byte overflow into a free block\'s header is caught or harmless: no crash, live blocks intact',
    run() {
      const world = new World(o);
      const a = world.alloc(HEADERED);
      const b = world.alloc(HEADERED);
      world.alloc(100);
      const end = a + world.heap.usableSize(a);
      world.release(b);
      world.forget(a);
      raw(end, 8).fill(0x41);
      world.tryMalloc(HEADERED);
      world.tryMalloc(HEADERED);
      world.attempt('check()', () => world.heap.check());
      world.end();
    },
  }];
}

function forgedSizeCases(o: HeapOptions): AttackCase[] {
  // The fast layouts' headers: the size word is the 4 bytes before a block's data.
  if (isClassic(o) || o.debug) return [];
  return [{
    id: 'a size word forged with its echo in a live neighbour\'s data, then free and malloc of the forged size',
    test: 'a forged block size whose echo lies in a live block is refused: no block is handed out over a live one',
    run() {
      const world = new World(o);
      // Past every preset's small slots (the shared preset's go to 512 bytes): blocks with headers.
      const a = world.alloc(600); // a block of 608 bytes
      const b = world.alloc(600); // the next one
      world.alloc(100);
      if (b !== a + 608) throw new Error(`setup: ${hex(b)} does not follow ${hex(a)}`);
      // 768 bytes from a's header lies inside b's data, which its program may write at will: the
      // heap may not take the word there for the next header's record of a forged size.
      const forged = 768;
      world.forget(b);
      poke32(a - 8 + forged, forged);
      world.forget(a);
      poke32(a - 4, forged);
      world.attempt(`free(${hex(a)})`, () => world.heap.free(a));
      const p = world.attempt(`malloc(${forged - 8})`, () => world.heap.malloc(forged - 8));
      if (p !== undefined && p !== 0 && p < b + 600 && b - 8 < p + forged - 8) {
        throw new Broken(`malloc(${forged - 8}) returned ${hex(p)}, whose bytes cover the live block ${hex(b)}`);
      }
      world.end();
    },
  }];
}

function linkCases(o: HeapOptions): AttackCase[] {
  // Merging with the damaged block must unlink it, so that free can only refuse; a malloc may
  // rightly take another block. Debug mode quarantines freed blocks: their links are only fill bytes.
  const test = o.debug
    ? 'damaged links of a quarantined block change no live block, and check() reports them'
    : 'free-list links aimed at live blocks or at themselves: ERR_HEAP_CORRUPTED before any write, no hang';
  const aims: [string, (l: number, h: number, self: number) => [number, number]][] = [
    ['into a live block\'s data', (l) => [l + 16, l + 32]],
    ['at a live block\'s header', (l, h) => [l - h, l - h]],
    ['at a live block\'s data start', (l) => [l, l]],
    ['at its own header (a loop)', (_l, h, self) => [self - h, self - h]],
  ];
  const listed = isClassic(o) ? 5000 : 150_000;
  const cases: AttackCase[] = [];
  for (const [aim, links] of aims) {
    for (const then of ['free of its neighbour', 'malloc(40)', 'malloc of a size it cannot satisfy']) {
      cases.push({
        id: `links of a freed listed block ${aim}, then ${then}`,
        test,
        run() {
          // Freed, it is filed on a free list at once: the fast presets' wide cache, which would
          // hold it whole, is full first (four blocks kept apart by live ones).
          const world = new World(o);
          world.alloc(listed);
          const a = world.alloc(listed);
          const b = world.alloc(listed);
          const live = world.alloc(300);
          if (!isClassic(o)) {
            const held = Array.from({ length: 4 }, () => [world.alloc(8000), world.alloc(300)] as const);
            for (const [p] of held) world.release(p);
          }
          world.release(a);
          world.assertMapped(a);
          const base = arenaBase(world);
          const [next, prev] = links(live, world.header, a);
          writeLinks(world, a, next, prev, base);
          const call = then === 'free of its neighbour' ? () => { world.forget(b); world.heap.free(b); }
            : then === 'malloc(40)' ? () => world.heap.malloc(40) : () => world.heap.malloc(listed + 1000);
          if (!o.debug && then === 'free of its neighbour') {
            expectCode(then, ['ERR_HEAP_CORRUPTED'], call);
            world.verify(`after ${then} was refused`);
          } else {
            const p = world.attempt(then, call);
            if (typeof p === 'number' && p !== 0) world.adopt(p, then === 'malloc(40)' ? 40 : listed + 1000, then);
          }
          if (o.debug) expectCode('check()', ['ERR_HEAP_CORRUPTED'], () => world.heap.check());
          else world.attempt('check()', () => world.heap.check());
          world.end();
        },
      });
    }
  }
  return cases;
}

function svgCases(o: HeapOptions): AttackCase[] {
  const noNaN = (svg: unknown): void => {
    if (typeof svg !== 'string' || !svg.startsWith('<svg')) throw new Broken(`toSVG returned ${String(svg).slice(0, 60)}`);
    if (/NaN|Infinity/.test(svg)) throw new Broken(`the SVG holds ${/NaN|Infinity/.exec(svg)![0]}`);
  };
  const cases: AttackCase[] = [{
    id: 'toSVG() of a heap with 161 regions',
    test: 'toSVG returns for a heap of more than 160 regions',
    timeoutMs: 8_000,
    run() {
      const heap = new Heap(o);
      const size = isClassic(o) ? 5000 : 300_000;
      for (let i = 0; i < 161; i++) if (heap.malloc(size) === 0) throw new Broken(`malloc(${size}) returned 0`);
      noNaN(heap.toSVG());
      heap.destroy();
    },
  }];
  const bad: [string, object][] = [['maxRows 0', { maxRows: 0 }], ['maxRows -1', { maxRows: -1 }], ['maxRows 0.5', { maxRows: 0.5 }],
    ['maxRows NaN', { maxRows: NaN }], ['width NaN', { width: NaN }], ['width -1', { width: -1 }]];
  for (const [label, options] of bad) {
    cases.push({
      id: `toSVG({ ${label} })`,
      test: 'toSVG with bad options returns a clean picture or throws RangeError, within the time limit',
      run() {
        const heap = new Heap(o);
        heap.malloc(100);
        heap.malloc(5000);
        let svg: string | undefined;
        try {
          svg = heap.toSVG(options);
        } catch (error) {
          if (!(error instanceof RangeError || error instanceof TypeError)) throw new Broken(`toSVG threw ${String(error)}`);
        }
        if (svg !== undefined) noNaN(svg);
        heap.destroy();
      },
    });
  }
  return cases;
}

function destroyedCases(o: HeapOptions): AttackCase[] {
  const calls: [string, (h: Heap, p: number, q: number) => unknown][] = [
    ['stats()', (h) => h.stats()], ['snapshot()', (h) => h.snapshot()], ['trim()', (h) => h.trim()],
    ['formatMemory()', (h) => h.formatMemory()], ['leakReport()', (h) => h.leakReport()], ['toSVG()', (h) => h.toSVG()],
    ['check()', (h) => h.check()], ['free(0)', (h) => h.free(0)], ['malloc(40)', (h) => h.malloc(40)], ['malloc(5000)', (h) => h.malloc(5000)],
    ['calloc(4, 8)', (h) => h.calloc(4, 8)], ['free of an old small block', (h, p) => h.free(p)], ['free of an old 5000-byte block', (h, _p, q) => h.free(q)],
    ['bytes of an old block', (h, p) => h.bytes(p)], ['usableSize of an old block', (h, p) => h.usableSize(p)],
    ['realloc of an old block', (h, p) => h.realloc(p, 100)], ['realloc(0, 10)', (h) => h.realloc(0, 10)],
  ];
  return calls.map(([label, call]) => ({
    id: `${label} after destroy()`,
    test: 'every call after destroy() throws ERR_HEAP_DESTROYED',
    run() {
      const heap = new Heap(o);
      const p = heap.malloc(40);
      const q = heap.malloc(5000);
      heap.malloc(100);
      heap.destroy();
      expectCode(label, ['ERR_HEAP_DESTROYED'], () => call(heap, p, q));
    },
  }));
}

function scopeCases(o: HeapOptions): AttackCase[] {
  return [{
    id: 'scope.dispose() after one of its blocks was freed directly',
    test: 'scope.dispose() frees every block it still holds, then reports the one freed behind its back; a second dispose() does nothing',
    run() {
      const heap = new Heap(o);
      const scope = heap.scope();
      const blocks = [scope.malloc(40), scope.malloc(5000), scope.malloc(100), scope.malloc(300)];
      heap.free(blocks[1]!);
      const error = expectCode('dispose()', ['ERR_DOUBLE_FREE', 'ERR_INVALID_POINTER'], () => scope.dispose());
      if (error.address !== blocks[1] && !error.message.includes(hex(blocks[1]!))) throw new Broken(`the error does not name ${hex(blocks[1]!)}: ${error.message}`);
      heap.trim(); // debug mode: empties the quarantine, so that stats count only live blocks
      const used = heap.stats().usedBlocks;
      if (used !== 0) throw new Broken(`${used} blocks still in use after dispose()`);
      scope.dispose();
      heap.check();
      heap.destroy();
    },
  }];
}

function scribbleCases(o: HeapOptions): AttackCase[] {
  const sizes: [string, number][] = [['40', 40], ['5000', 5000]];
  if (!isClassic(o) && !o.shared) sizes.push(['300 KiB (a large block)', 300 * 1024]);
  return sizes.map(([label, n]) => ({
    id: `scribble: realloc(realloc(p${label}, ${n} - 10), ${n})`,
    test: 'with scribble on, every byte a realloc gives a block is 0xAA',
    run() {
      const heap = new Heap({ ...o, scribble: true });
      let p = heap.malloc(n);
      heap.bytes(p, n).fill(0x11);
      p = heap.realloc(p, n - 10);
      p = heap.realloc(p, n);
      const bytes = heap.bytes(p, n);
      for (let i = n - 10; i < n; i++) if (bytes[i] !== 0xaa) throw new Broken(`byte ${i} is ${hex(bytes[i]!)}, not 0xaa`);
      for (let i = 0; i < n - 10; i++) if (bytes[i] !== 0x11) throw new Broken(`kept byte ${i} is ${hex(bytes[i]!)}`);
      heap.destroy();
    },
  }));
}

function argumentCases(o: HeapOptions): AttackCase[] {
  const test = 'odd arguments: arenas, sizes near 2^53 and pointer-typed decode give answers or clear errors, never a crash';
  const huge = [2 ** 53 - 32, 2 ** 53 - 17, 2 ** 53 - 1];
  return [{
    id: 'heap.arena(64) works',
    test,
    run() {
      const heap = new Heap(o);
      const arena = heap.arena(64);
      if (arena.alloc(16) === 0) throw new Broken('arena.alloc(16) returned 0');
      heap.destroy();
    },
  }, {
    id: 'malloc of sizes from 2^53-32 to 2^53-1 returns 0, or ERR_OUT_OF_MEMORY when asked to throw',
    test,
    run() {
      const heap = new Heap(o);
      for (const n of huge) {
        let got: number;
        try {
          got = heap.malloc(n);
        } catch (error) {
          throw new Broken(`malloc(${n}) threw ${String(error)}`);
        }
        if (got !== 0) throw new Broken(`malloc(${n}) returned ${got}`);
      }
      heap.destroy();
      const thrower = new Heap({ ...o, throwOnOutOfMemory: true });
      for (const n of huge) expectCode(`malloc(${n})`, ['ERR_OUT_OF_MEMORY'], () => thrower.malloc(n));
      thrower.destroy();
    },
  }, {
    id: 'arena.alloc(n, \'16\') and heap.arena(64, null) are TypeErrors',
    test,
    run() {
      const heap = new Heap(o);
      const arena = heap.arena(256);
      expectThrows('arena.alloc(8, \'16\')', [TypeError], () => arena.alloc(8, '16' as unknown as number));
      expectThrows('heap.arena(64, null)', [TypeError], () => heap.arena(64, null as unknown as string));
      heap.destroy();
    },
  }, {
    id: 'decode(p, \'char *\') over bytes that hold no pointer',
    test,
    run() {
      const heap = new Heap(o);
      const p = heap.malloc(16);
      for (const fill of [0x41, 0x7f, 0xdd]) {
        heap.bytes(p).fill(fill);
        try {
          heap.decode(p, 'char *');
        } catch (error) {
          if (!(error instanceof TypeError || error instanceof RangeError)) throw new Broken(`decode threw ${String(error)}`);
        }
      }
      heap.destroy();
    },
  }];
}

export const miscGroup: CaseGroup = (preset: TestPreset) => {
  const o = preset.options;
  return [...overflowCases(o), ...forgedSizeCases(o), ...linkCases(o), ...svgCases(o), ...destroyedCases(o), ...scopeCases(o), ...scribbleCases(o), ...argumentCases(o)];
};
