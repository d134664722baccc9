// npm run bench:zlib: zlib deflate of 10 MB timed with zlib's own allocator (C malloc) and with
// ffi-heap as its allocator, in one process, median of five runs each: once as one stream (zlib
// allocates its ~270 KB of state five blocks at a time when the stream starts), and once as 1,000
// streams of 10 KB, where the allocator's callbacks into JavaScript are a larger share.

import { Heap } from '../src/index.js';
import { random } from '../src/debug/random.js';
import { deflateInHeap, loadZlib, zlibAllocator } from '../src/interop/zlib.js';
import { runtimeName } from './runtime.js';

const MB = 1024 * 1024;
const RUNS = 5;

/** 10 MB: half random bytes, half words from a small vocabulary, interleaved in 64 KiB runs. */
function input(): Uint8Array {
  const next = random(11);
  const out = new Uint8Array(10 * MB);
  const words = ['allocator ', 'heap ', 'block ', 'zlib ', 'deflate ', 'koffi ', 'native ', '\n'];
  for (let i = 0; i < out.length;) {
    const compressible = ((i >>> 16) & 1) === 1;
    const end = Math.min(out.length, i + 65536);
    if (!compressible) {
      while (i < end) out[i++] = Math.floor(next() * 256);
    } else {
      while (i < end) for (const c of words[Math.floor(next() * words.length)]!) if (i < end) out[i++] = c.charCodeAt(0);
    }
  }
  return out;
}

const zlib = loadZlib();
const data = input();
const heap = new Heap();
const allocator = zlibAllocator(heap);

function median(fn: () => void): number {
  fn(); // warm-up
  const times = Array.from({ length: RUNS }, () => {
    const started = performance.now();
    fn();
    return performance.now() - started;
  }).sort((a, b) => a - b);
  return times[RUNS >> 1]!;
}

const pieces = Array.from({ length: 1000 }, (_, i) => data.subarray(i * 10 * 1024, (i + 1) * 10 * 1024));
const rows: [string, number, number][] = [
  ['10 MB, one stream', median(() => deflateInHeap(zlib, heap, data)), median(() => deflateInHeap(zlib, allocator, data))],
  ['10 MB as 1,000 streams of 10 KB', median(() => pieces.forEach((p) => deflateInHeap(zlib, heap, p))), median(() => pieces.forEach((p) => deflateInHeap(zlib, allocator, p)))],
];
if (allocator.error !== undefined) throw allocator.error;
heap.check();
if (heap.stats().inUse !== 0) throw new Error('the benchmark left blocks allocated');

console.log(`zlib ${zlib.version} deflate (level 6) of 10 MB, ${runtimeName(true)}, median of ${RUNS} runs:`);
for (const [name, own, ours] of rows) {
  console.log(`  ${name}: zlib's own allocator ${own.toFixed(1)} ms, ffi-heap ${ours.toFixed(1)} ms (${(ours / own).toFixed(2)} times the time)`);
}
