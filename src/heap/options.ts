// Heap options: what a caller may pass, their defaults, and reading them from the environment.

import { FIT_ALGORITHMS, type FitAlgorithm } from '../strategies/fit.js';

/** A heap's engine: 'fast' (the default) or 'classic' (the course design's layout, exact). */
export type Preset = 'fast' | 'classic';
export const PRESETS: readonly Preset[] = ['fast', 'classic'];

/** What `new Heap(options)` accepts; every field is optional, unknown fields are refused. */
export interface HeapOptions {
  /** Which preset runs the heap: 'fast' (the default) or 'classic' (the course design, exact). */
  preset?: Preset;
  /** The classic preset's free-list search. Default 'first_fit'; the fast preset ignores it. */
  algorithm?: FitAlgorithm;
  /** Fill every new allocation with 0xAA, so reads of uninitialized memory stand out. */
  scribble?: boolean;
  /** The most bytes the heap may hold from the kernel at once; past it, allocations fail. */
  limit?: number;
  /** Throw HeapError('ERR_OUT_OF_MEMORY') where malloc, calloc and realloc would return 0. */
  throwOnOutOfMemory?: boolean;
  /** Canaries around every block, freed blocks filled and quarantined: slower, catches more. */
  debug?: boolean;
  /**
   * One heap for many worker threads: `heap.handle()` posted to a worker, `Heap.attach(handle)`
   * there. The fast preset only, without names, debug checks or autoFree.
   */
  shared?: boolean;
  /**
   * The fast preset serves requests of up to 256 bytes from 1 KiB pages of one size class (no
   * header, fastest) once this many bytes are in use; below it they are blocks of its lists, which
   * can merge with their neighbours. Default 0: pages from the first request. Infinity: never.
   */
  pagesFrom?: number;
  /**
   * Keep every malloc, calloc, realloc and free as a trace, for `heap.recorded()` (then
   * `ffi-heap replay`). Not for a shared heap. Heaps made without it pay nothing for it.
   */
  record?: boolean;
}

export interface ResolvedOptions {
  preset: Preset;
  algorithm: FitAlgorithm;
  scribble: boolean;
  limit: number;
  throwOnOutOfMemory: boolean;
  debug: boolean;
  shared: boolean;
  pagesFrom: number;
  record: boolean;
}

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new RangeError(`${what} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Checks every option and fills in the defaults. Unknown keys are refused, to catch typos. */
/** Every object resolveOptions returned: what the preset classes' constructors accept. */
const resolvedOptions = new WeakSet<object>();

/** Whether `options` came from resolveOptions (so a preset class is being made by the heap itself). */
export function isResolved(options: unknown): boolean {
  return typeof options === 'object' && options !== null && resolvedOptions.has(options);
}

export function resolveOptions(options: HeapOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Heap options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const known = new Set(['preset', 'algorithm', 'scribble', 'limit', 'throwOnOutOfMemory', 'debug', 'shared', 'pagesFrom', 'record']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`unknown Heap option '${key}'`);
  }
  const scribble = options.scribble ?? false;
  if (typeof scribble !== 'boolean') throw new TypeError(`scribble must be a boolean, got ${typeof scribble}`);
  const debug = options.debug ?? false;
  if (typeof debug !== 'boolean') throw new TypeError(`debug must be a boolean, got ${typeof debug}`);
  const shared = options.shared ?? false;
  if (typeof shared !== 'boolean') throw new TypeError(`shared must be a boolean, got ${typeof shared}`);
  if (shared && (options.preset ?? 'fast') !== 'fast') throw new TypeError('a shared heap runs the fast preset only');
  if (shared && debug) throw new TypeError('a shared heap has no debug mode (its checks keep per-thread state)');
  const record = options.record ?? false;
  if (typeof record !== 'boolean') throw new TypeError(`record must be a boolean, got ${typeof record}`);
  if (shared && record) throw new TypeError('a shared heap does not record (each thread makes calls of its own)');
  const throwOnOutOfMemory = options.throwOnOutOfMemory ?? false;
  if (typeof throwOnOutOfMemory !== 'boolean') throw new TypeError(`throwOnOutOfMemory must be a boolean, got ${typeof throwOnOutOfMemory}`);
  const limit = options.limit ?? Infinity;
  if (typeof limit !== 'number') throw new TypeError(`limit must be a number of bytes, got ${typeof limit}`);
  if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new RangeError(`limit must be a non-negative whole number of bytes (or Infinity), got ${limit}`);
  }
  const pagesFrom = options.pagesFrom ?? 0;
  if (typeof pagesFrom !== 'number') throw new TypeError(`pagesFrom must be a number of bytes, got ${typeof pagesFrom}`);
  if (pagesFrom !== Infinity && !(Number.isSafeInteger(pagesFrom) && pagesFrom >= 0)) {
    throw new RangeError(`pagesFrom must be a non-negative whole number of bytes (or Infinity), got ${pagesFrom}`);
  }
  const resolved: ResolvedOptions = {
    preset: oneOf('preset', options.preset ?? 'fast', PRESETS),
    algorithm: oneOf('algorithm', options.algorithm ?? 'first_fit', FIT_ALGORITHMS),
    scribble,
    limit,
    throwOnOutOfMemory,
    debug,
    shared,
    pagesFrom,
    record,
  };
  resolvedOptions.add(resolved);
  return resolved;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = env[name];
  if (value === undefined || value === '' || value === '0') return false;
  if (value === '1') return true;
  throw new RangeError(`${name} must be 1 or 0, got ${JSON.stringify(value)}`);
}

/** What the default heap is configured with; see the README's table of environment variables. */
export interface EnvironmentConfig {
  options: HeapOptions;
  leakCheck: boolean;
}

export function optionsFromEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentConfig {
  const options: HeapOptions = {};
  if (env.ALLOCATOR_PRESET) options.preset = oneOf('ALLOCATOR_PRESET', env.ALLOCATOR_PRESET, PRESETS);
  if (env.ALLOCATOR_ALGORITHM) options.algorithm = oneOf('ALLOCATOR_ALGORITHM', env.ALLOCATOR_ALGORITHM, FIT_ALGORITHMS);
  if (flag(env, 'ALLOCATOR_SCRIBBLE')) options.scribble = true;
  if (flag(env, 'ALLOCATOR_DEBUG')) options.debug = true;
  return { options, leakCheck: flag(env, 'ALLOCATOR_LEAK_CHECK') };
}
