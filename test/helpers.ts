// Shared by the test suites: expected print_memory text built from a layout, byte patterns, and
// code run in a worker over a shared heap.

import { Worker } from 'node:worker_threads';
import type { Heap } from '../src/index.js';
import type { TestPreset } from './presets.js';

export type State = 'USED' | 'FREE';
/** One block as the print shows it: size with header, state, name. */
export type Row = readonly [size: number, state: State, name: string];
/** A free-list entry: [region index, block index]. */
export type Ref = readonly [region: number, block: number];

const hex = (n: number): string => '0x' + n.toString(16);

/**
 * The print_memory text a heap must show for `regions` (blocks in order, each region laid out from
 * its base) and `free` (the free list in order). Region bases come from the heap, as mmap chose them.
 */
export function expectedMemory(heap: Heap, regions: readonly (readonly Row[])[], free: readonly Ref[]): string {
  const bases = heap.snapshot().regions.map((r) => r.address);
  if (bases.length !== regions.length) {
    throw new Error(`expected ${regions.length} regions, the heap has ${bases.length}:\n${heap.formatMemory()}`);
  }
  const starts: number[][] = [];
  let out = '-- Current Memory State --\n';
  regions.forEach((rows, r) => {
    let at = bases[r]!;
    starts.push([]);
    out += `[REGION ${hex(at)}]\n`;
    for (const [size, state, name] of rows) {
      starts[r]!.push(at);
      out += `  [BLOCK ${hex(at)}-${hex(at + size)}] ${size}\t[${state}]\t'${name}'\n`;
      at += size;
    }
  });
  out += '\n-- Free List --\n';
  for (const [r, b] of free) out += `[${hex(starts[r]![b]!)}] -> `;
  return out + 'NULL\n';
}

/** Fills a block with a pattern derived from `seed`, so that overlaps and corruption show. */
export function fillPattern(heap: Heap, ptr: number, length: number, seed: number): void {
  const bytes = heap.bytes(ptr, length);
  for (let i = 0; i < length; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
}

/** The index of the first byte that breaks the pattern, or -1. */
export function checkPattern(heap: Heap, ptr: number, length: number, seed: number): number {
  const bytes = heap.bytes(ptr, length);
  for (let i = 0; i < length; i++) if (bytes[i] !== ((seed * 31 + i * 7) & 0xff)) return i;
  return -1;
}

/** `name` where the preset keeps block names; no name where it refuses them (the shared heap). */
export function nameFor(p: TestPreset, name: string): string | undefined {
  return p.names ? name : undefined;
}

export { random } from '../src/debug/random.js';

/**
 * Runs `source` (the body of an async function, with `heap` attached from workerData.handle and
 * `Heap`, `HeapError` in scope) in a worker, and resolves to what it returns; a throw resolves to
 * `{ thrown, code }`.
 */
export function inWorker<T>(handle: unknown, source: string, extra: object = {}): Promise<T> {
  const entry = new URL('../src/index.js', import.meta.url).href;
  const code = `
const { parentPort, workerData } = require('node:worker_threads');
import(${JSON.stringify(entry)}).then(async ({ Heap, HeapError }) => {
  const heap = Heap.attach(workerData.handle);
  const result = await (async () => { ${source} })();
  parentPort.postMessage(result ?? null);
}).catch((e) => parentPort.postMessage({ thrown: String(e), code: e.code }));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { handle, ...extra } });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}
