// npm run bench [-- --json FILE] [--time MS]
//
// Runs every microbenchmark row for every peer, each peer in a child process of its own (so no
// peer's JIT feedback or garbage slows another), then the scaling runs, the memory report and the
// pair called directly (./direct.ts), and prints the tables docs/benchmarks.md quotes: medians
// with their spread (the median absolute deviation, as a percentage of the median). --json FILE
// also writes every figure as JSON.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { directPair, type DirectPair } from './direct.js';
import { PEERS, peerNamed, type Allocator } from './peers.js';
import { ROWS } from './rows.js';
import { runtimeName } from './runtime.js';
import { hotStacks, memory, randomChurn, type MemoryReport, type Timing } from './scaling.js';

interface Measurement {
  readonly row: string;
  readonly peer: string;
  /** Median nanoseconds per operation (see the row's unit). */
  readonly ns: number;
  /** The samples' median absolute deviation, in the same unit. */
  readonly mad: number;
}

const USAGE = `usage: npm run bench [-- --json FILE] [--time MS]

Times ffi-heap and its peers (glibc via koffi, koffi.alloc, @thi.ng/malloc, Buffer, ArrayBuffer;
glibc via bun:ffi under Bun), each in a child process of its own, and prints the tables.
  --json FILE  also write every figure as JSON
  --time MS    time per row and peer (default 400)
`;

/** A command line the benchmark cannot run: one line and exit status 2, not a stack trace. */
class UsageError extends Error {}

interface Options {
  json: string | undefined;
  time: number;
}

function parseArgs(argv: readonly string[]): { child: string | undefined; peer: string | undefined; options: Options } {
  let child: string | undefined;
  let peer: string | undefined;
  const options: Options = { json: undefined, time: 400 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (arg === '--child') child = value();
    else if (arg === '--peer') peer = value();
    else if (arg === '--json') options.json = value();
    else if (arg === '--time') {
      const text = value();
      options.time = Number(text);
      if (!(Number.isFinite(options.time) && options.time > 0)) throw new UsageError(`--time must be a positive number of milliseconds, got '${text}'`);
    } else throw new UsageError(`unknown argument '${arg}' (npm run bench -- --help lists the options)`);
  }
  return { child, peer, options };
}

async function microChild(peerName: string, time: number): Promise<Measurement[]> {
  const peer = peerNamed(peerName);
  const allocator = peer.create();
  const own: Allocator[] = [];
  const bench = new Bench({ time, warmupTime: time / 4, iterations: 10 });
  for (const row of ROWS) {
    const a = row.ownAllocator ? peer.create() : allocator;
    if (a !== allocator) own.push(a);
    bench.add(row.name, row.make(a));
  }
  await bench.run();
  for (const a of [allocator, ...own]) a.dispose();
  return bench.tasks.map((task) => {
    const row = ROWS.find((r) => r.name === task.name)!;
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`${peerName} / ${task.name}: ${result.state}`);
    return { row: row.name, peer: peer.name, ns: (result.latency.p50 * 1e6) / row.batch, mad: (result.latency.mad * 1e6) / row.batch };
  });
}

/** Runs this file again as a child and returns what it printed, parsed. */
function child<T>(args: string[]): T {
  const self = fileURLToPath(import.meta.url);
  const run = spawnSync(process.execPath, ['--expose-gc', self, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(`benchmark child ${args.join(' ')} failed with status ${run.status}`);
  return JSON.parse(run.stdout) as T;
}

const ROUNDS_NOTE = 'median of 11 alternating rounds of 2 million pairs (fastest-slowest round)';

/** A ratio that stays readable far from 1: two decimals from 0.1 to 100, 1/N below (N times as fast), whole above. */
const ratio = (x: number): string => (x < 0.1 ? `1/${(1 / x).toFixed(0)}` : x > 100 ? `${x.toFixed(0)}` : x.toFixed(2));

const fmt = (ns: number): string => (ns >= 10_000 ? `${(ns / 1000).toFixed(0)} µs` : ns >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(1)} ns`);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|')}|`, ...rows.map(line)].join('\n');
}

function machine(): string {
  let cpu = cpus()[0]?.model ?? 'unknown CPU';
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  return `${runtimeName()}, ${process.platform}-${process.arch}, ${cpus().length} cores, ${cpu}`;
}

async function main(): Promise<void> {
  const { child: role, peer, options } = parseArgs(process.argv.slice(2));
  if (role === 'micro') {
    process.stdout.write(JSON.stringify(await microChild(peer!, options.time)));
    return;
  }
  if (role === 'scaling') {
    const [small, large] = await hotStacks([1000, 1_000_000]);
    const churn = await randomChurn();
    process.stdout.write(JSON.stringify({ small, large, churn }));
    return;
  }
  if (role === 'memory') {
    process.stdout.write(JSON.stringify(memory()));
    return;
  }
  if (role === 'direct') {
    process.stdout.write(JSON.stringify(await directPair()));
    return;
  }

  const started = Date.now();
  process.stderr.write(`${machine()}\n`);
  const measurements: Measurement[] = [];
  for (const p of PEERS) {
    process.stderr.write(`  measuring ${p.name}...\n`);
    measurements.push(...child<Measurement[]>(['--child', 'micro', '--peer', p.name, '--time', String(options.time)]));
  }
  process.stderr.write('  scaling runs...\n');
  const scaling = child<{ small: Timing; large: Timing; churn: { heap: Timing; glibc: Timing } }>(['--child', 'scaling']);
  process.stderr.write('  memory...\n');
  const mem = child<MemoryReport>(['--child', 'memory']);
  process.stderr.write('  direct calls...\n');
  const direct = child<DirectPair>(['--child', 'direct']);

  const ns = (row: string, peerName: string): number => measurements.find((m) => m.row === row && m.peer === peerName)!.ns;
  const others = PEERS.filter((p) => p.name !== 'ffi-heap');
  let out = `ffi-heap benchmarks: ${machine()}\n\n`;
  out += 'Median time per operation:\n\n';
  const spread = (row: string, peerName: string): string => {
    const m = measurements.find((x) => x.row === row && x.peer === peerName)!;
    return `${fmt(m.ns)} ±${((100 * m.mad) / m.ns).toFixed(0)}%`;
  };
  out += table(['row', 'per', ...PEERS.map((p) => p.name)], ROWS.map((r) => [r.name, r.unit, ...PEERS.map((p) => spread(r.name, p.name))]));
  out += '\n\n(median ± median absolute deviation, as a percentage of the median)';
  out += '\n\nffi-heap time as a fraction of each peer\'s (0.25 = four times as fast; 1/N: N times as fast):\n\n';
  out += table(['row', ...others.map((p) => `÷ ${p.name}`)], ROWS.map((r) => [r.name, ...others.map((p) => ratio(ns(r.name, 'ffi-heap') / ns(r.name, p.name)))]));
  const range = (t: readonly [number, number, number], f: (x: number) => string): string => `${f(t[0])} (${f(t[1])}-${f(t[2])})`;
  out += `\n\nThe 64-byte pair called as a program calls (heap.malloc(64) at the call site; glibc through ${direct.ffi}, likewise),`;
  out += ` ${ROUNDS_NOTE}:\n\n`;
  out += table(['allocator', 'per pair'], [
    ['ffi-heap', range(direct.heap, fmt)],
    [`glibc via ${direct.ffi}`, range(direct.glibc, fmt)],
    [`ffi-heap ÷ glibc via ${direct.ffi}`, range(direct.ratio, (x) => x.toFixed(2))],
  ]);
  out += '\n\nConstant time: a hot LIFO stack of 32-256 blocks over a fragmented background:\n\n';
  out += table(['background', 'per malloc or free'], [
    ['1 thousand live blocks', fmt(scaling.small.ns)],
    ['1 million live blocks', fmt(scaling.large.ns)],
    ['ratio (target <= 1.2)', (scaling.large.ns / scaling.small.ns).toFixed(2)],
  ]);
  out += '\n\nRandom frees over 1 million live blocks (cache misses dominate), same process:\n\n';
  out += table(['allocator', 'per malloc or free'], [
    ['ffi-heap', fmt(scaling.churn.heap.ns)],
    ['glibc via koffi', fmt(scaling.churn.glibc.ns)],
    ['ffi-heap ÷ glibc via koffi', ratio(scaling.churn.heap.ns / scaling.churn.glibc.ns)],
  ]);
  out += '\n\nMemory:\n\n';
  out += table(['measure', 'value'], [
    ['1M allocations of 16-64 B: mmap calls', String(mem.smallRun.mmapCalls)],
    ['  heap grown to (MiB)', mem.smallRun.mappedMiB.toFixed(1)],
    ['  mmap calls per MiB (target <= 1)', mem.smallRun.mmapCallsPerMiB.toFixed(2)],
    ['1M allocations of 16 B: bytes mapped per block', mem.sixteen.bytesPerBlock.toFixed(1)],
    ['  mapped ÷ payload', mem.sixteen.overhead.toFixed(2)],
    ['  glibc, bytes from the kernel per block', mem.sixteen.glibcBytesPerBlock.toFixed(1)],
  ]);
  out += `\n\n(${((Date.now() - started) / 1000).toFixed(0)} s)\n`;
  process.stdout.write(out);
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify({ machine: machine(), date: new Date().toISOString(), measurements, scaling, memory: mem, direct }, null, 2) + '\n');
    process.stderr.write(`wrote ${options.json}\n`);
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`npm run bench: ${error.message}\n`);
  process.exitCode = 2;
}
