// Writes after free: a stale pointer writes a value into one of a freed block's first words (where
// the free-list or cache links live), then the program makes one kind of call. Whatever the value,
// the heap must neither crash nor hang, every call must work or throw ERR_HEAP_CORRUPTED, and no
// live block may change. Each (shape, word, value, call) is one case.

import type { HeapOptions } from '../../src/index.js';
import type { TestPreset } from '../presets.js';
import { Broken, type AttackCase, type CaseGroup } from './case.js';
import { World, hex, poke32, poke64 } from './world.js';

/** Where the freed block sits, and what the attacker can point its links at. */
interface Scene {
  readonly world: World;
  readonly size: number;
  /** The freed block's data address: where its links are. */
  readonly target: number;
  /** Live blocks right before and after it. */
  readonly left: number;
  readonly right: number;
  /** A live block elsewhere, and a freed block of another size class. */
  readonly live: number;
  readonly otherFree: number;
  /** The end of the mapping that holds the target (the fast arena's committed top). */
  readonly end: number;
  /** A link's value for an address: an offset from the arena (fast) or the address (classic). */
  link(address: number): number;
}

interface Shape {
  readonly name: string;
  readonly size: number;
  /** The size in the fast presets, where it differs. */
  readonly fastSize?: number;
  /** The target is freed between two freed neighbours, so that it merges with both. */
  readonly merged: boolean;
}

export const SHAPES: readonly Shape[] = [
  { name: 'a cached 40-byte block', size: 40, merged: false },
  { name: 'a cached 1000-byte block', size: 1000, merged: false },
  { name: 'a 5000-byte block (in the fast presets, held whole by the wide cache)', size: 5000, merged: false },
  { name: 'a listed block', size: 5000, fastSize: 150_000, merged: false },
  { name: 'a block merged with free neighbours', size: 5000, fastSize: 150_000, merged: true },
];

function stage(options: HeapOptions, shape: Shape): Scene {
  const world = new World(options);
  // In the fast presets a block of 2 to 128 KiB is held whole when freed (the wide cache); the
  // shapes of a listed block take a size past it there. (The classic preset unmaps such a block's
  // region when it is freed, so it keeps the smaller size.)
  const size = options.preset === 'classic' ? shape.size : shape.fastSize ?? shape.size;
  world.alloc(100);
  const left = world.alloc(size);
  const before = shape.merged ? world.alloc(size) : 0;
  let target = world.alloc(size);
  const after = shape.merged ? world.alloc(size) : 0;
  const right = world.alloc(size);
  const other = world.alloc(200);
  world.alloc(64);
  const medium = world.alloc(7000);
  const live = world.alloc(300);
  world.release(other);
  world.release(medium);
  if (shape.merged) {
    world.release(before);
    world.release(after);
    world.release(target);
    target = before; // the merged block starts where the first neighbour did
  } else {
    world.release(target);
  }
  world.assertMapped(target);
  const regions = world.heap.snapshot().regions;
  const region = regions.find((r) => r.address <= target && target < r.address + r.size) ?? regions[0]!;
  const base = options.preset === 'classic' ? 0 : regions[0]!.address;
  return { world, size, target, left, right, live, otherFree: other, end: region.address + region.size, link: (a) => a - base };
}

/** Values for a link, by what they point at. */
const VALUES: readonly (readonly [string, (s: Scene) => number])[] = [
  ['0', () => 0],
  ['1', () => 1],
  ['8', () => 8],
  ['0x10', () => 0x10],
  ['0x100000', () => 0x100000],
  ['1 GiB', () => 2 ** 30],
  ['0x7fffffff', () => 0x7fffffff],
  ['0x80000000', () => 0x80000000],
  ['0xffffffff', () => 0xffffffff],
  ['a random word', () => 0x3a5c9e17],
  ['the mapping end - 12', (s) => s.link(s.end - 12)],
  ['the mapping end - 8', (s) => s.link(s.end - 8)],
  ['the mapping end', (s) => s.link(s.end)],
  ['the mapping end + 8', (s) => s.link(s.end + 8)],
  ['its own header (a loop)', (s) => s.link(s.target - s.world.header)],
  ['its own data', (s) => s.link(s.target)],
  ['a live block\'s header', (s) => s.link(s.live - s.world.header)],
  ['a live block\'s data', (s) => s.link(s.live)],
  ['16 bytes inside a live block', (s) => s.link(s.live + 16)],
  ['the next block\'s header', (s) => s.link(s.right - s.world.header)],
  ['a free block of another size', (s) => s.link(s.otherFree - s.world.header)],
];

/** Where the value goes: a u32 at data offsets 0..12, and (classic, whose links are u64) a u64 at 0 and 8. */
interface Slot {
  readonly name: string;
  write(s: Scene, value: number): void;
}

function slots(options: HeapOptions): Slot[] {
  const out: Slot[] = [0, 1, 2, 3].map((k) => ({ name: `u32 word ${k}`, write: (s: Scene, v: number) => poke32(s.target + 4 * k, v % 2 ** 32) }));
  if (options.preset === 'classic') {
    for (const k of [0, 1]) out.push({ name: `u64 word ${k}`, write: (s, v) => poke64(s.target + 8 * k, v) });
  }
  return out;
}

/** The calls made after the write, each a short program. */
const CALLS: readonly (readonly [string, (s: Scene) => void])[] = [
  ['malloc of the same size, three times', (s) => {
    for (let i = 0; i < 3; i++) s.world.tryMalloc(s.size);
  }],
  ['mallocs of other sizes', (s) => {
    for (const n of [24, 100, 200, 1000, 5000, 7000, 40_000]) s.world.tryMalloc(n);
  }],
  ['free of both neighbours (coalescing)', (s) => {
    s.world.tryFree(s.left);
    s.world.tryFree(s.right);
  }],
  ['realloc growing the left neighbour', (s) => s.world.tryRealloc(s.left, s.size + 3000)],
  ['realloc shrinking the left neighbour', (s) => s.world.tryRealloc(s.left, 8)],
  ['calloc', (s) => {
    s.world.tryCalloc(1, s.size);
    s.world.tryCalloc(10, 8);
  }],
  ['trim()', (s) => s.world.attempt('trim()', () => s.world.heap.trim())],
  ['check()', (s) => s.world.attempt('check()', () => s.world.heap.check())],
  ['snapshot()', (s) => s.world.attempt('snapshot()', () => s.world.heap.snapshot())],
  ['formatMemory()', (s) => s.world.attempt('formatMemory()', () => s.world.heap.formatMemory())],
  ['leakReport()', (s) => s.world.attempt('leakReport()', () => s.world.heap.leakReport())],
  ['stats()', (s) => s.world.attempt('stats()', () => s.world.heap.stats())],
  ['toSVG()', (s) => s.world.attempt('toSVG()', () => s.world.heap.toSVG())],
  ['growth (many allocations)', (s) => {
    const sizes = [...new Array(40).fill(s.size), ...new Array(12).fill(30_000)] as number[];
    const got: number[] = [];
    s.world.attempt(`${sizes.length} mallocs`, () => {
      for (const n of sizes) got.push(s.world.heap.malloc(n));
    });
    got.forEach((p, i) => {
      if (p === 0) throw new Broken(`growth: malloc(${sizes[i]}) returned 0 on a heap with no limit`);
      s.world.adopt(p, sizes[i]!, `growth malloc(${sizes[i]})`);
    });
    s.world.verify('after growth');
  }],
];


/**
 * How many of the calls follow each (word, value) write. Every case needs a heap of its own, and a
 * fast-preset heap costs some 6 ms to make and destroy (a shared one 20 ms), so the full product
 * (ATTACK_FULL=1) is a long run; by default each write is followed by a window of calls that
 * rotates with the word, the value and the shape, so that every (value, call) pair still meets.
 */
function callsPerWrite(options: HeapOptions): number {
  if (process.env.ATTACK_FULL === '1') return CALLS.length;
  if (options.shared) return 1;
  if (options.preset === 'classic') return options.debug || (options.algorithm ?? 'first_fit') !== 'first_fit' ? 2 : 5;
  return 2;
}

/** One group per shape, so that each runs in batches of its own. */
export function writeAfterFreeGroup(shape: Shape, shapeIndex: number): CaseGroup {
  return (preset: TestPreset): AttackCase[] => {
    const cases: AttackCase[] = [];
    const depth = callsPerWrite(preset.options);
    slots(preset.options).forEach((slot, slotIndex) => {
      VALUES.forEach(([label, value], valueIndex) => {
        const first = slotIndex * depth + valueIndex * 5 + shapeIndex * 3;
        for (let k = 0; k < depth; k++) {
          const [call, act] = CALLS[(first + k) % CALLS.length]!;
          cases.push({
            id: `${shape.name} · ${slot.name} = ${label} · ${call}`,
            test: `a write after free into ${shape.name}, then ${call}: no crash or hang, only ERR_HEAP_CORRUPTED, live blocks intact`,
            run() {
              const scene = stage(preset.options, shape);
              const v = value(scene);
              slot.write(scene, v);
              try {
                act(scene);
                // Whatever the call did, the heap's own check must agree with it or report the damage.
                scene.world.attempt('check() afterwards', () => scene.world.heap.check());
              } catch (error) {
                if (error instanceof Broken) error.message = `(wrote ${hex(v % 2 ** 32)}) ${error.message}`;
                throw error;
              }
              scene.world.end();
            },
          });
        }
      });
    });
    return cases;
  };
}
