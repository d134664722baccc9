// Synthetic traces of typical workloads, deterministic for a given seed. They stand in for the
// classic malloc-lab traces (whose licence keeps them out of this repository) with the same shapes.

import { random } from '../debug/random.js';
import { OP_ALLOC, OP_FREE, OP_REALLOC, peakPayload, type Trace } from './format.js';

/** Records requests and assigns ids; `build()` frees whatever is still live, then packs the trace. */
class TraceBuilder {
  private readonly kinds: number[] = [];
  private readonly ids: number[] = [];
  private readonly sizes: number[] = [];
  private readonly live = new Set<number>();
  private nextId = 0;

  get ops(): number {
    return this.kinds.length;
  }

  alloc(size: number): number {
    const id = this.nextId++;
    this.push(OP_ALLOC, id, size);
    this.live.add(id);
    return id;
  }

  realloc(id: number, size: number): void {
    this.push(OP_REALLOC, id, size);
  }

  free(id: number): void {
    this.push(OP_FREE, id, 0);
    this.live.delete(id);
  }

  build(name: string): Trace {
    for (const id of [...this.live]) this.free(id);
    const trace: Trace = {
      name,
      suggestedHeapSize: 0,
      idCount: this.nextId,
      weight: 1,
      kinds: Uint8Array.from(this.kinds),
      ids: Uint32Array.from(this.ids),
      sizes: Float64Array.from(this.sizes),
    };
    return { ...trace, suggestedHeapSize: peakPayload(trace).bytes };
  }

  private push(kind: number, id: number, size: number): void {
    this.kinds.push(kind);
    this.ids.push(id);
    this.sizes.push(size);
  }
}

type Generator = (b: TraceBuilder, ops: number, rnd: () => number) => void;

const between = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
/** Log-uniform in [lo, hi]: as many requests of 16-32 bytes as of 16-32 KiB. */
const logUniform = (rnd: () => number, lo: number, hi: number): number => Math.round(lo * (hi / lo) ** rnd());
const pick = <T>(rnd: () => number, items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;

/** Frees a random live id from `pool` (kept as an array for O(1) picks). */
function freeRandom(b: TraceBuilder, pool: number[], rnd: () => number): void {
  const i = Math.floor(rnd() * pool.length);
  b.free(pool[i]!);
  pool[i] = pool[pool.length - 1]!;
  pool.pop();
}

const GENERATORS: Readonly<Record<string, { about: string; run: Generator }>> = {
  churn: {
    about: 'small-object churn: a steady population of 16-128 byte objects, replaced at random',
    run: (b, ops, rnd) => {
      const pool: number[] = [];
      const population = Math.max(16, Math.floor(ops / 8));
      while (b.ops < ops) {
        if (pool.length < population || rnd() < 0.5) pool.push(b.alloc(between(rnd, 16, 128)));
        else freeRandom(b, pool, rnd);
      }
    },
  },
  binary: {
    about: 'binary pattern: small and large blocks alternate, the small ones are freed, then larger requests come',
    run: (b, ops, rnd) => {
      while (b.ops < ops) {
        const small: number[] = [];
        const large: number[] = [];
        const pairs = Math.max(8, Math.floor(ops / 20));
        for (let i = 0; i < pairs; i++) {
          small.push(b.alloc(between(rnd, 16, 64)));
          large.push(b.alloc(between(rnd, 400, 500)));
        }
        for (const id of small) b.free(id);
        for (let i = 0; i < pairs; i++) large.push(b.alloc(between(rnd, 500, 600)));
        for (const id of large) b.free(id);
      }
    },
  },
  coalesce: {
    about: 'coalescing: runs of neighbours are freed in scattered order, then larger requests need them merged',
    run: (b, ops, rnd) => {
      while (b.ops < ops) {
        const size = pick(rnd, [32, 64, 100, 256, 1000]);
        const run = Array.from({ length: 64 }, () => b.alloc(size));
        for (let i = 0; i < run.length; i += 2) b.free(run[i]!);
        for (let i = 1; i < run.length; i += 2) b.free(run[i]!);
        const merged = Array.from({ length: 8 }, () => b.alloc(size * 7));
        for (const id of merged) b.free(id);
      }
    },
  },
  realloc: {
    about: 'realloc growth: buffers grown step by step, with small allocations in between that block growth in place',
    run: (b, ops, rnd) => {
      const small: number[] = [];
      while (b.ops < ops) {
        const buffers = Array.from({ length: between(rnd, 1, 4) }, () => ({ id: b.alloc(16), size: 16 }));
        const steps = between(rnd, 8, 40);
        for (let s = 0; s < steps; s++) {
          for (const buf of buffers) {
            buf.size = rnd() < 0.5 ? buf.size + between(rnd, 16, 256) : Math.ceil(buf.size * 1.5);
            b.realloc(buf.id, buf.size);
          }
          if (rnd() < 0.5) small.push(b.alloc(between(rnd, 16, 96)));
          if (small.length > 64) freeRandom(b, small, rnd);
        }
        for (const buf of buffers) b.free(buf.id);
      }
    },
  },
  random: {
    about: 'random sizes: log-uniform requests from 1 byte to 64 KiB, freed at random',
    run: (b, ops, rnd) => {
      const pool: number[] = [];
      while (b.ops < ops) {
        if (pool.length === 0 || rnd() < 0.55) pool.push(b.alloc(logUniform(rnd, 1, 65536)));
        else freeRandom(b, pool, rnd);
      }
    },
  },
  queue: {
    about: 'producer/consumer: messages of 32 B to 2 KiB queued, the oldest consumed first',
    run: (b, ops, rnd) => {
      const queue: number[] = [];
      let head = 0;
      const depth = Math.max(8, Math.floor(ops / 50));
      while (b.ops < ops) {
        const burst = between(rnd, 1, 2 * depth);
        for (let i = 0; i < burst && b.ops < ops; i++) queue.push(b.alloc(logUniform(rnd, 32, 2048)));
        while (queue.length - head > depth) b.free(queue[head++]!);
      }
    },
  },
  builder: {
    about: 'a string builder: one buffer grown by realloc through the medium sizes, small long-lived objects allocated between its steps',
    run: (b, ops, rnd) => {
      while (b.ops < ops) {
        let size = between(rnd, 32, 128);
        const buffer = b.alloc(size);
        const objects: number[] = [];
        while (size < 256 * 1024 && b.ops < ops) {
          size += between(rnd, size >> 3, size >> 1);
          b.realloc(buffer, size);
          for (let k = between(rnd, 1, 3); k > 0; k--) objects.push(b.alloc(between(rnd, 16, 96)));
        }
        b.free(buffer);
        // Most of the small objects outlive the buffer, as a parser's nodes outlive its text.
        for (const id of objects) if (rnd() < 0.2) b.free(id);
      }
    },
  },
  alternate: {
    about: 'small and medium blocks alternate, the small ones are freed, then requests a little larger than the medium ones come',
    run: (b, ops, rnd) => {
      while (b.ops < ops) {
        const small: number[] = [];
        const medium: number[] = [];
        const base = pick(rnd, [1024, 2048, 4096, 8192]);
        const pairs = Math.max(8, Math.floor(ops / 20));
        for (let i = 0; i < pairs; i++) {
          small.push(b.alloc(between(rnd, 16, 128)));
          medium.push(b.alloc(between(rnd, base, base + base / 4)));
        }
        for (const id of small) b.free(id);
        for (let i = 0; i < pairs; i++) medium.push(b.alloc(between(rnd, base + base / 4, base + base / 2)));
        for (const id of medium) b.free(id);
      }
    },
  },
  sizes: {
    about: 'many sizes, few blocks each: a thousand distinct sizes from 8 B to 64 KiB, one to three blocks of each, freed at random',
    run: (b, ops, rnd) => {
      const pool: number[] = [];
      while (b.ops < ops) {
        const size = logUniform(rnd, 8, 65536);
        for (let k = between(rnd, 1, 3); k > 0; k--) pool.push(b.alloc(size));
        while (pool.length > 64 && rnd() < 0.6) freeRandom(b, pool, rnd);
      }
    },
  },
  uniform: {
    about: 'random sizes: uniform requests from 8 B to 64 KiB, freed at random',
    run: (b, ops, rnd) => {
      const pool: number[] = [];
      while (b.ops < ops) {
        if (pool.length === 0 || rnd() < 0.55) pool.push(b.alloc(between(rnd, 8, 65536)));
        else freeRandom(b, pool, rnd);
      }
    },
  },
  mixed: {
    about: 'long-lived plus short-lived: a growing set of long-lived objects among many temporaries',
    run: (b, ops, rnd) => {
      const temporaries: number[] = [];
      while (b.ops < ops) {
        if (rnd() < 0.1) b.alloc(rnd() < 0.95 ? between(rnd, 16, 256) : between(rnd, 4096, 65536)); // lives to the end
        else temporaries.push(b.alloc(logUniform(rnd, 8, 4096)));
        while (temporaries.length > 0 && rnd() < 0.5) freeRandom(b, temporaries, rnd);
      }
    },
  },
};

/** The kinds gen-trace knows, with a line about each. */
export const TRACE_KINDS: ReadonlyArray<{ kind: string; about: string }> =
  Object.entries(GENERATORS).map(([kind, g]) => ({ kind, about: g.about }));

/** The most operations a generated trace may ask for: about 120 MB of trace text. */
export const MAX_OPS = 10_000_000;

/** A trace of about `ops` operations (plus the frees that end it) of the given kind. */
export function generateTrace(kind: string, ops: number, seed: number): Trace {
  const generator = GENERATORS[kind];
  if (generator === undefined) {
    throw new RangeError(`unknown trace kind '${kind}'; known: ${Object.keys(GENERATORS).join(', ')}`);
  }
  if (!Number.isSafeInteger(ops) || ops < 1 || ops > MAX_OPS) {
    throw new RangeError(`--ops must be a whole number from 1 to ${MAX_OPS}, got ${ops}`);
  }
  const b = new TraceBuilder();
  generator.run(b, ops, random(seed));
  return b.build(`${kind}`);
}
