// npm run bench:native [-- --repeat N] [--warmup MS] [--processes P] [TRACE...]
//
// ffi-heap against native C: glibc's malloc called from C (bench/native/glibc.c, compiled here
// with the machine's C compiler into build/bench/), with glibc through koffi beside it. Two
// measures, as issue targets quote them:
// - the 64-byte malloc+free pair (and a few other sizes): median ns over rounds, spread beside it;
// - trace replay: the best of N timed passes (default 20) over each trace, after untimed warm-up
//   passes (at least MS milliseconds, default 1000: steady speed, which a JIT-compiled allocator
//   reaches only after some millions of requests), for native glibc, ffi-heap's fast preset and
//   glibc through koffi (the replay tool's `libc`), all three warmed up alike. Each
//   trace and allocator runs in a process of its own, as the native program does: one process's
//   JIT feedback from another trace would slow the next (the replay tool, which times every trace
//   in one process, shows that cost). With --processes P, in P processes each, alternating: each
//   cell is the median of their bests, and a table of the spread (slowest to fastest process)
//   follows, since on a shared machine one process may run at half speed from start to end.
// Without a C compiler it says so and measures nothing native.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Heap } from '../src/index.js';
import { formatTrace, readTrace, type Trace } from '../src/trace/format.js';
import { allocatorNamed, replay } from '../src/trace/replay.js';
import { runtimeName } from './runtime.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const source = join(root, 'bench/native/glibc.c');
const binary = join(root, 'build/bench/native-glibc');

interface Spread {
  median: number;
  min: number;
  max: number;
}

function compile(): boolean {
  for (const cc of [process.env['CC'] ?? 'cc', 'gcc', 'clang']) {
    const run = spawnSync(cc, ['-O2', '-o', binary, source], { encoding: 'utf8' });
    if (run.status === 0) return true;
  }
  return false;
}

function native(args: readonly string[]): Record<string, number> {
  const run = spawnSync(binary, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`native-glibc ${args.join(' ')} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, number>;
}

/** Replays one trace on one allocator in a child process of its own (this script with --one). */
function replayAlone(file: string, allocator: string, repeat: number, warmup: number): number {
  const self = fileURLToPath(import.meta.url);
  const run = spawnSync(process.execPath, [self, '--one', file, allocator, String(repeat), String(warmup)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (run.status !== 0) throw new Error(`replay of ${file} on ${allocator} failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { seconds: number }).seconds;
}

/** The child's side: verifies, then times, one trace; prints the best pass in seconds. */
async function one(file: string, allocator: string, repeat: number, warmup: number): Promise<void> {
  const result = await replay(readTrace(file), allocatorNamed(allocator), { repeat, warmup });
  if (!result.verified) throw new Error(`${result.trace}: ${result.error}`);
  process.stdout.write(`${JSON.stringify({ seconds: result.seconds })}\n`);
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[sorted.length >> 1]!, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

// The JavaScript pair loop is compiled once per size (new Function), so that each size's loop gets
// JIT feedback of its own, as each row of `npm run bench` does.
const PAIR_LOOP = `
  const t0 = performance.now();
  let sink = 0;
  for (let i = 0; i < pairs; i++) {
    const p = heap.malloc(size);
    sink += p & 1;
    heap.free(p);
  }
  if (sink < 0) throw new Error('unreachable');
  return (performance.now() - t0) * 1e6 / pairs;`;

function heapPair(size: number, pairs: number, rounds: number): Spread {
  const heap = new Heap();
  const loop = new Function('heap', 'size', 'pairs', PAIR_LOOP) as (h: Heap, s: number, n: number) => number;
  loop(heap, size, pairs);
  const ns: number[] = [];
  for (let r = 0; r < rounds; r++) ns.push(loop(heap, size, pairs));
  heap.destroy();
  return spread(ns);
}

const fmt = (s: Spread): string => `${s.median.toFixed(1)} ns (${s.min.toFixed(1)}-${s.max.toFixed(1)})`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--one') return one(args[1]!, args[2]!, Number(args[3]), Number(args[4]));
  let repeat = 20;
  let warmup = 1000;
  let processes = 1;
  const files: string[] = [];
  /** The traces recorded from real programs (../shared/traces), totalled apart. */
  const realFiles = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--repeat') repeat = Number(args[++i]);
    else if (args[i] === '--warmup') warmup = Number(args[++i]);
    else if (args[i] === '--processes') processes = Number(args[++i]);
    else if (args[i] === '--help' || args[i] === '-h') {
      process.stdout.write('usage: npm run bench:native [-- --repeat N] [--warmup MS] [--processes P] [TRACE...]\n');
      return;
    } else files.push(args[i]!);
  }
  if (!Number.isSafeInteger(repeat) || repeat < 1) throw new RangeError(`--repeat must be a positive whole number, got ${args.join(' ')}`);
  if (!Number.isFinite(warmup) || warmup < 0) throw new RangeError(`--warmup must be a number of milliseconds, at least 0, got ${args.join(' ')}`);
  if (!Number.isSafeInteger(processes) || processes < 1) throw new RangeError(`--processes must be a positive whole number, got ${args.join(' ')}`);
  if (files.length === 0) {
    const shared = join(root, '../shared/traces');
    try {
      for (const f of readdirSync(shared).sort()) {
        if (!f.endsWith('.rep.gz')) continue;
        files.push(join(shared, f));
        realFiles.add(join(shared, f));
      }
    } catch {
      // No shared traces beside the project: the fixtures alone.
    }
    for (const f of readdirSync(join(root, 'test/fixtures')).sort()) if (f.endsWith('.rep')) files.push(join(root, 'test/fixtures', f));
  }
  if (!compile()) {
    process.stdout.write('No C compiler (cc, gcc or clang) here: the native baseline is skipped.\n');
    return;
  }
  process.stdout.write(`ffi-heap against native C glibc, ${runtimeName()}, ${new Date().toISOString().slice(0, 10)}\n\n`);
  process.stdout.write('malloc+free pair: median of 15 rounds of 1,000,000 pairs (min-max)\n');
  process.stdout.write('size   native glibc (C)        ffi-heap fast            ratio\n');
  for (const size of [16, 64, 256, 1024]) {
    const c = native(['pair', String(size), '1000000', '15']);
    const cs: Spread = { median: c['medianNs']!, min: c['minNs']!, max: c['maxNs']! };
    const js = heapPair(size, 1_000_000, 15);
    process.stdout.write(`${String(size).padStart(4)}   ${fmt(cs).padEnd(22)}  ${fmt(js).padEnd(22)}  ${(js.median / cs.median).toFixed(2)}\n`);
  }

  process.stdout.write(`\nreplay: best of ${repeat} timed passes after at least ${warmup} ms of untimed ones, each trace and\n`);
  process.stdout.write(processes === 1
    ? 'allocator in a process of its own, in millions of requests a second (ratio to native glibc)\n'
    : `allocator in ${processes} processes of its own, the median of their bests, in millions of requests a second\n(ratio to native glibc)\n`);
  process.stdout.write('trace                 ops      native glibc   ffi-heap fast   glibc via koffi\n');
  const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-native-'));
  // Two totals: the traces of real programs (../shared/traces, the issue targets' measure) and all.
  const totals = { ops: 0, native: 0, heap: 0, koffi: 0 };
  const real = { ops: 0, native: 0, heap: 0, koffi: 0 };
  const spreads: string[] = [];
  try {
    for (const file of files) {
      const trace: Trace = readTrace(file);
      const plain = join(dir, 'trace.rep');
      writeFileSync(plain, formatTrace(trace));
      // The three in turn, P times: a slow spell of the machine falls on all of them.
      const runs = { native: [] as number[], heap: [] as number[], koffi: [] as number[] };
      for (let r = 0; r < processes; r++) {
        runs.native.push(native(['replay', plain, String(repeat), String(warmup)])['seconds']!);
        runs.heap.push(replayAlone(plain, 'ffi-heap', repeat, warmup));
        runs.koffi.push(replayAlone(plain, 'libc', repeat, warmup));
      }
      const c = { seconds: spread(runs.native).median };
      const heap = { seconds: spread(runs.heap).median };
      const koffi = { seconds: spread(runs.koffi).median };
      const range = (seconds: number[]): string => {
        const s = spread(seconds);
        return `${(trace.kinds.length / s.max / 1e6).toFixed(1)}-${(trace.kinds.length / s.min / 1e6).toFixed(1)}`;
      };
      if (processes > 1) {
        spreads.push(`${trace.name.padEnd(20)} ${range(runs.native).padStart(14)}   ${range(runs.heap).padStart(13)}   ${range(runs.koffi).padStart(15)}\n`);
      }
      const mops = (seconds: number): string => (trace.kinds.length / seconds / 1e6).toFixed(1);
      const ratio = (seconds: number): string => (c.seconds / seconds).toFixed(2);
      process.stdout.write(`${trace.name.padEnd(20)} ${String(trace.kinds.length).padStart(8)}   ${mops(c.seconds).padStart(12)}` +
        `   ${`${mops(heap.seconds)} (${ratio(heap.seconds)})`.padStart(13)}   ${`${mops(koffi.seconds)} (${ratio(koffi.seconds)})`.padStart(15)}\n`);
      for (const sum of realFiles.has(file) ? [totals, real] : [totals]) {
        sum.ops += trace.kinds.length;
        sum.native += c.seconds;
        sum.heap += heap.seconds;
        sum.koffi += koffi.seconds;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const row = (name: string, sum: typeof totals): void => {
    const mops = (seconds: number): string => (sum.ops / seconds / 1e6).toFixed(1);
    process.stdout.write(`${name.padEnd(20)} ${String(sum.ops).padStart(8)}   ${mops(sum.native).padStart(12)}` +
      `   ${`${mops(sum.heap)} (${(sum.native / sum.heap).toFixed(2)})`.padStart(13)}` +
      `   ${`${mops(sum.koffi)} (${(sum.native / sum.koffi).toFixed(2)})`.padStart(15)}\n`);
  };
  if (real.ops > 0) row('TOTAL real programs', real);
  row('TOTAL', totals);
  if (real.ops > 0) process.stdout.write(`ffi-heap against glibc via koffi, real programs: ${(real.koffi / real.heap).toFixed(2)} times its throughput\n`);
  process.stdout.write(`ffi-heap against glibc via koffi, total: ${(totals.koffi / totals.heap).toFixed(2)} times its throughput\n`);
  if (spreads.length > 0) {
    process.stdout.write(`\nspread over the ${processes} processes: slowest to fastest, in millions of requests a second\n`);
    process.stdout.write('trace                  native glibc   ffi-heap fast   glibc via koffi\n');
    for (const line of spreads) process.stdout.write(line);
  }
}

await main();
