// The microbenchmark rows. Each task runs a batch of operations (a tinybench sample costs 40 to
// 100 ns by itself, as much as the thing measured), and reports time per operation.

import { random } from '../src/debug/random.js';
import type { Allocator, Block } from './peers.js';

export interface Row {
  readonly name: string;
  /** What one "operation" is, for the table. */
  readonly unit: string;
  /** Operations per task call. */
  readonly batch: number;
  /** Whether the row runs on an allocator made for it alone, not the one the other rows share and grow. */
  readonly ownAllocator?: boolean;
  /** Builds the task for an allocator; the returned function runs one batch. */
  make(a: Allocator): () => void;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The loop of a pair row, compiled anew for each row (the size stays a variable, not a literal).
 * A closure written once here would be one function for V8, its type feedback shared by every
 * pair row: tinybench warms every task up before it measures any, so the 16-byte row would run
 * code shaped by the 1 MiB row. A program's own call sites each see their own sizes.
 */
function pairLoop(): (a: Allocator, size: number, batch: number) => () => void {
  return new Function('a', 'size', 'batch', `return () => {
    for (let i = 0; i < batch; i++) a.free(a.malloc(size));
  };`) as (a: Allocator, size: number, batch: number) => () => void;
}

function pair(size: number, batch: number): Row {
  const label = size >= MiB ? `${size / MiB} MiB` : size >= KiB ? `${size / KiB} KiB` : `${size} B`;
  const loop = pairLoop();
  return {
    name: `malloc+free ${label}`,
    unit: 'pair',
    batch,
    make: (a) => loop(a, size, batch),
  };
}

const MIXED_COUNT = 10_000;

/** 10,000 blocks of mixed sizes (mostly small, some up to 16 KiB), freed in a random order. */
const mixed: Row = {
  name: `${MIXED_COUNT / 1000}k mixed, random free`,
  unit: 'malloc or free',
  batch: 2 * MIXED_COUNT,
  make: (a) => {
    const next = random(1);
    const sizes = Array.from({ length: MIXED_COUNT }, () => (next() < 0.9 ? 16 + Math.floor(next() * 240) : 256 + Math.floor(next() * 16 * KiB)));
    const order = Array.from({ length: MIXED_COUNT }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const blocks: Block[] = new Array(MIXED_COUNT).fill(0);
    return () => {
      for (let i = 0; i < MIXED_COUNT; i++) blocks[i] = a.malloc(sizes[i]!);
      for (let i = 0; i < MIXED_COUNT; i++) a.free(blocks[order[i]!]);
    };
  },
};

const CHURN_LIVE = 256;
const CHURN_OPS = 4096;

/**
 * A steady churn of random sizes: CHURN_LIVE places, each holding a block of 16 B to 2 KiB or
 * none; each operation picks a place at random and fills it (malloc) or empties it (free). The
 * sequence never repeats (xorshift in the loop, a few instructions), so the heap keeps meeting
 * new arrangements of holes at its peak, as a program's does; on an allocator of its own, whose
 * peak is this churn's (the rows before it leave the shared one with room to spare).
 */
const churn: Row = {
  name: `churn of ${CHURN_LIVE} places, 16 B to 2 KiB`,
  unit: 'malloc or free',
  batch: CHURN_OPS,
  ownAllocator: true,
  make: (a) => {
    const held: Array<Block | 0> = new Array(CHURN_LIVE).fill(0);
    let x = 2463534242;
    return () => {
      for (let i = 0; i < CHURN_OPS; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const p = x & (CHURN_LIVE - 1);
        const block = held[p]!;
        if (block === 0) {
          held[p] = a.malloc(16 + ((x >>> 8) % 2033));
        } else {
          a.free(block);
          held[p] = 0;
        }
      }
    };
  },
};

/** A block grown by doubling from 16 B to 1 MiB, then freed. */
const reallocChain: Row = {
  name: 'realloc chain 16 B to 1 MiB',
  unit: 'chain (17 calls)',
  batch: 1,
  make: (a) => () => {
    let block = a.malloc(16);
    for (let size = 32; size <= MiB; size *= 2) block = a.realloc(block, size / 2, size);
    a.free(block);
  },
};

const callocRow: Row = {
  name: 'calloc 1 KiB + free',
  unit: 'pair',
  batch: 1000,
  make: (a) => () => {
    for (let i = 0; i < 1000; i++) a.free(a.calloc(16, 64));
  },
};

export const ROWS: readonly Row[] = [
  pair(16, 1000),
  pair(64, 1000),
  pair(256, 1000),
  pair(4 * KiB, 1000),
  pair(64 * KiB, 200),
  pair(MiB, 20),
  mixed,
  churn,
  reallocChain,
  callocRow,
];
