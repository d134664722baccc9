// `ffi-heap replay [--allocator NAME]... [--json] [--repeat N] [--warmup MS] [--svg FILE] FILE...`

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toSVG } from '../debug/svg.js';
import { readTrace, TraceError } from '../trace/format.js';
import { ALLOCATORS, allocatorNamed, replay, type ReplayResult } from '../trace/replay.js';

export const REPLAY_USAGE = `usage: ffi-heap replay [--allocator NAME]... [--json] [--repeat N] [--warmup MS] [--svg FILE] FILE...

Replays malloc-lab traces (a/r/f lines after a 4-number header; .gz read directly). For each trace
and allocator: verifies every request (alignment, payloads that never overlap and keep their bytes),
then times N passes (best counts) and scores utilization (peak live payload / peak bytes held from
the kernel).

  --allocator NAME  ${ALLOCATORS.map((a) => a.name).join(', ')} (repeatable; default ffi-heap)
  --json            one JSON line per trace and allocator instead of the table
  --repeat N        timed passes per trace (default 3)
  --warmup MS       untimed passes for at least MS milliseconds first (default 0: at least 2 passes
                    and 100,000 requests); a JIT-compiled allocator needs about a second to reach
                    its steady speed
  --svg FILE        draw the heap at the first trace's peak payload (first ffi-heap allocator)
`;

const pad = (text: string, width: number, right = false): string => (right ? text.padStart(width) : text.padEnd(width));

function table(results: readonly ReplayResult[]): string {
  const header = ['trace', 'allocator', 'ops', 'kops/s', 'util', 'peak payload', 'peak footprint', 'verified'];
  const rows = results.map((r) => [
    r.trace, r.allocator, String(r.ops), r.verified ? r.kops.toFixed(0) : '-', r.verified ? r.utilization.toFixed(3) : '-',
    String(r.peakPayload), r.verified ? String(r.peakFootprint) : '-', r.verified ? 'yes' : `NO: ${r.error}`,
  ]);
  for (const name of [...new Set(results.map((r) => r.allocator))]) {
    const mine = results.filter((r) => r.allocator === name && r.verified);
    if (mine.length === 0) continue;
    const ops = mine.reduce((s, r) => s + r.ops, 0);
    const seconds = mine.reduce((s, r) => s + r.seconds, 0);
    const util = mine.reduce((s, r) => s + r.utilization, 0) / mine.length;
    rows.push(['TOTAL', name, String(ops), (ops / seconds / 1000).toFixed(0), util.toFixed(3), '', '', `${mine.length} traces`]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 6]);
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, widths[i]!, numeric.has(i))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Runs the command; returns the exit code (1 when a trace could not be read or was not verified). */
export async function replayCommand(argv: readonly string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      allocator: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      repeat: { type: 'string' },
      warmup: { type: 'string' },
      svg: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(REPLAY_USAGE);
    return 0;
  }
  if (positionals.length === 0) {
    err(`ffi-heap replay: no trace file given\n\n${REPLAY_USAGE}`);
    return 2;
  }
  const repeat = values.repeat === undefined ? 3 : Number(values.repeat);
  if (!Number.isSafeInteger(repeat) || repeat < 1) {
    err(`ffi-heap replay: --repeat must be a whole number of at least 1, got '${values.repeat}'\n`);
    return 2;
  }
  const warmup = values.warmup === undefined ? 0 : Number(values.warmup);
  if (!Number.isFinite(warmup) || warmup < 0) {
    err(`ffi-heap replay: --warmup must be a number of milliseconds, at least 0, got '${values.warmup}'\n`);
    return 2;
  }
  let factories;
  try {
    factories = (values.allocator ?? ['ffi-heap']).map(allocatorNamed);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    err(`ffi-heap replay: ${error.message}\n`);
    return 2;
  }
  const svgAllocator = values.svg === undefined ? undefined : factories.find((f) => f.name.startsWith('ffi-heap'));
  if (values.svg !== undefined && svgAllocator === undefined) {
    err('ffi-heap replay: --svg draws an ffi-heap allocator; add --allocator ffi-heap or ffi-heap-classic\n');
    return 2;
  }

  const results: ReplayResult[] = [];
  let status = 0;
  let drawn = false;
  for (const file of positionals) {
    let trace;
    try {
      trace = readTrace(file);
    } catch (error) {
      if (!(error instanceof TraceError)) throw error;
      err(`ffi-heap replay: ${error.message}\n`);
      status = 1;
      continue;
    }
    for (const factory of factories) {
      const draw = !drawn && factory === svgAllocator;
      const { snapshot, ...result } = await replay(trace, factory, { repeat, warmup, snapshotAtPeak: draw, progress: (line) => err(`  ${line}\n`) });
      if (draw && snapshot !== undefined) {
        writeFileSync(values.svg!, toSVG(snapshot, { title: `${trace.name} at its peak payload, ${factory.name}` }));
        err(`  wrote ${values.svg}\n`);
        drawn = true;
      }
      if (!result.verified) status = 1;
      results.push(result);
      if (values.json) {
        const { allocator, trace: name, ops, kops, utilization, peakPayload, peakFootprint, verified, error } = result;
        out(JSON.stringify({ allocator, trace: name, ops, kops, utilization, peakPayload, peakFootprint, verified, ...(error ? { error } : {}) }) + '\n');
      }
    }
  }
  if (!values.json && results.length > 0) out(table(results));
  return status;
}
