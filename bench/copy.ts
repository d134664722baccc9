// npm run bench:copy
//
// What a copy of n bytes between blocks costs, three ways, to choose how realloc moves a block
// (src/os/memory.ts, copyMemory and NATIVE_COPY_MIN):
// - within one typed array (copyWithin): a move inside the fast preset's medium arena;
// - between two views over different mappings (subarray of each, then set), as a move that
//   crosses mappings did: small pages to the arena, the arena to a large mapping, one classic
//   region to another;
// - libc's memcpy through the FFI: one call, no view made, whatever the mappings.
// Each figure is the median of 9 rounds (the spread beside it); both mappings are written first,
// so no page fault is timed.

import { copyMemory, NATIVE_COPY_MIN } from '../src/os/memory.js';
import { libc, nativeView } from '../src/os/libc.js';
import { runtimeName } from './runtime.js';

const SPAN = 8 << 20;

function mapped(): { address: number; bytes: Uint8Array } {
  const lib = libc();
  const c = lib.constants;
  const address = lib.mmap(0, SPAN, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0);
  if (address <= 0) throw new Error('bench:copy: mmap failed');
  const bytes = new Uint8Array(nativeView(address, SPAN));
  bytes.fill(1);
  return { address, bytes };
}

type Copy = (n: number) => void;

function median(copy: Copy, n: number): { median: number; min: number; max: number } {
  // Enough copies a round for about a millisecond of copying, and at least 20.
  const reps = Math.max(20, Math.min(100_000, Math.floor(2_000_000 / (n + 64))));
  for (let i = 0; i < reps; i++) copy(n);
  const ns: number[] = [];
  for (let r = 0; r < 9; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) copy(n);
    ns.push(((performance.now() - t0) * 1e6) / reps);
  }
  ns.sort((a, b) => a - b);
  return { median: ns[4]!, min: ns[0]!, max: ns[8]! };
}

function main(): void {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('usage: npm run bench:copy\n');
    return;
  }
  const a = mapped();
  const b = mapped();
  const half = SPAN / 2;
  const within: Copy = (n) => { a.bytes.copyWithin(half, 64, 64 + n); };
  const across: Copy = (n) => { b.bytes.subarray(128, 128 + n).set(a.bytes.subarray(64, 64 + n)); };
  const native: Copy = (n) => { copyMemory(b.address + 128, a.address + 64, n); };
  process.stdout.write(`copy of n bytes, ${runtimeName()}, ${new Date().toISOString().slice(0, 10)}: median ns of 9 rounds (min-max)\n`);
  process.stdout.write(`realloc's moves across mappings use memcpy from ${NATIVE_COPY_MIN} bytes\n\n`);
  process.stdout.write('bytes       within one view (copyWithin)   across views (set)        memcpy (FFI)\n');
  const fmt = (s: { median: number; min: number; max: number }): string =>
    `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`.padEnd(26);
  for (let n = 16; n <= 4 << 20; n *= 4) {
    process.stdout.write(`${String(n).padEnd(10)}  ${fmt(median(within, n))}     ${fmt(median(across, n))}${fmt(median(native, n))}\n`);
  }
}

main();
