// Programs for the model (./model.ts): fast-check arbitraries, so that a failing program shrinks
// to a short one, and the same distribution drawn from a seeded PRNG for the soak run. Sizes are
// mostly small, sometimes a few pages, rarely large enough for a mapping of its own; bursts build
// live sets of thousands of blocks.

import fc from 'fast-check';
import type { Op } from './model.js';

const LARGE = 256 * 1024;

const size: fc.Arbitrary<number> = fc.oneof(
  { weight: 20, arbitrary: fc.nat(300) },
  { weight: 3, arbitrary: fc.nat(16384) },
  { weight: 1, arbitrary: fc.integer({ min: LARGE, max: LARGE + 65536 }) },
);

/** One op; with `writesAfterFree`, writes into freed blocks are among them. */
export function opArbitrary(writesAfterFree: boolean): fc.Arbitrary<Op> {
  const ops: fc.WeightedArbitrary<Op>[] = [
    { weight: 10, arbitrary: fc.record({ kind: fc.constant('malloc' as const), size, calloc: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('burst' as const), count: fc.integer({ min: 1, max: 3000 }), size: fc.nat(300) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size: fc.oneof(fc.constant(0), size) }) },
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat(), count: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 1000 }) }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('misuse' as const), what: fc.nat(3), pick: fc.nat(), arg: fc.nat() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'trim' as const }) },
  ];
  if (writesAfterFree) {
    ops.push({ weight: 2, arbitrary: fc.constant({ kind: 'check' as const }) });
    ops.push({
      weight: 12,
      arbitrary: fc.record({
        kind: fc.constant('writeFreed' as const),
        pick: fc.nat(),
        // Mostly a freed block's first words (where links live), as a dangling pointer writes them.
        offset: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 4, 8, 12) }, { weight: 1, arbitrary: fc.nat() }),
        value: fc.oneof(
          fc.integer({ min: 0, max: 2 ** 30 }).map((v) => v & ~7),
          fc.nat(0xffff_ffff),
          fc.constantFrom(0, 1, 8, 16, 0x100000, 0x7fff_fff0, 0xffff_ffff),
        ),
        width: fc.constantFrom(1 as const, 4 as const, 8 as const),
      }),
    });
  }
  return fc.oneof(...ops);
}

/** A whole program. */
export function programArbitrary(writesAfterFree: boolean, maxLength: number): fc.Arbitrary<Op[]> {
  return fc.array(opArbitrary(writesAfterFree), { minLength: 1, maxLength });
}

/** The same distribution of ops from a PRNG giving numbers in [0, 1), for the soak run. */
export function randomOp(next: () => number, writesAfterFree: boolean): Op {
  const nat = (n: number): number => Math.floor(next() * (n + 1));
  const pickSize = (): number => {
    const r = next() * 24;
    return r < 20 ? nat(300) : r < 23 ? nat(16384) : LARGE + nat(65536);
  };
  const r = next() * (writesAfterFree ? 42 : 28);
  if (r < 10) return { kind: 'malloc', size: pickSize(), calloc: next() < 0.5 };
  if (r < 12) return { kind: 'burst', count: 1 + nat(2999), size: nat(300) };
  if (r < 17) return { kind: 'realloc', pick: nat(2 ** 31), size: next() < 0.15 ? 0 : pickSize() };
  if (r < 25) return { kind: 'free', pick: nat(2 ** 31), count: next() < 0.8 ? 1 : 2 + nat(998) };
  if (r < 27) return { kind: 'misuse', what: nat(3), pick: nat(2 ** 31), arg: nat(2 ** 31) };
  if (r < 28) return { kind: 'trim' };
  if (r < 30) return { kind: 'check' };
  const width = ([1, 4, 8] as const)[nat(2)]!;
  const offset = next() < 0.8 ? 4 * nat(3) : nat(2 ** 31);
  return { kind: 'writeFreed', pick: nat(2 ** 31), offset, value: next() < 0.5 ? nat(2 ** 30) & ~7 : nat(0xffff_ffff), width };
}
