// Traces: the parser refuses every malformed input with its file and line, the generator is
// deterministic, the verifier catches allocators that overlap or corrupt blocks, utilization is
// the arithmetic it claims, and the fixtures replay clean on every allocator.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { TraceError, formatTrace, parseTrace, peakPayload, readTrace } from '../src/trace/format.js';
import { TRACE_KINDS, generateTrace } from '../src/trace/generate.js';
import { ALLOCATORS, allocatorNamed, replay, timedSizes, type AllocatorFactory, type ReplayAllocator } from '../src/trace/replay.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function refuses(text: string, line: number, message: RegExp): void {
  try {
    parseTrace(text, 'bad.rep');
  } catch (error) {
    assert.instance(error, TraceError);
    const e = error as TraceError;
    assert.is(e.file, 'bad.rep');
    assert.is(e.line, line, `line of: ${e.message}`);
    assert.match(e.message, /^bad\.rep:\d+: /);
    assert.match(e.message, message);
    return;
  }
  assert.unreachable(`accepted: ${JSON.stringify(text)}`);
}

test('the parser reads requests, with CRLF, blank lines and any whitespace', () => {
  const trace = parseTrace('0\r\n3\r\n4\r\n1\r\n\r\na 0 10\r\n  a\t1   20\r\n\r\nr 0 30\r\nf 0\r\n', 't.rep');
  assert.equal([...trace.kinds], [0, 0, 1, 2]);
  assert.equal([...trace.ids], [0, 1, 0, 0]);
  assert.equal([...trace.sizes], [10, 20, 30, 0]);
  assert.equal([trace.idCount, trace.weight, trace.name], [3, 1, 't']);
  const oneLineHeader = parseTrace('0 1 1 1\na 0 5\n', 'x.rep');
  assert.is(oneLineHeader.kinds.length, 1);
});

test('the parser refuses every malformed trace, naming the file and line', () => {
  refuses('0\n1\n', 2, /truncated: the header needs 4 numbers, found 2/);
  refuses('0\nmany\n1\n1\na 0 1\n', 2, /the header must be 4 whole numbers/);
  refuses('0 1 1 1 9\na 0 1\n', 1, /the header must be 4 whole numbers/);
  refuses('0 2 2 1\na 0 1\nx 1 5\n', 3, /unknown operation 'x'/);
  refuses('0 2 2 1\na 0 1\na 1\n', 3, /'a' needs an id and a size/);
  refuses('0 2 2 1\na 0 1\nf\n', 3, /'f' needs an id/);
  refuses('0 2 2 1\na 0 1\nf 0 7\n', 3, /too many fields/);
  refuses('0 2 1 1\na zero 1\n', 2, /the id must be a whole number, found 'zero'/);
  refuses('0 2 1 1\na 5 1\n', 2, /unknown id 5: the header declares ids 0 to 1/);
  refuses('0 2 1 1\nf 1\n', 2, /unknown id 1: it was never allocated/);
  refuses('0 2 1 1\nr 1 8\n', 2, /unknown id 1: it was never allocated/);
  refuses('0 2 3 1\na 0 1\nf 0\nf 0\n', 4, /id 0 was already freed/);
  refuses('0 2 3 1\na 0 1\nf 0\nr 0 4\n', 4, /id 0 was already freed/);
  refuses('0 2 2 1\na 0 1\na 0 2\n', 3, /id 0 is allocated again while still live/);
  refuses('0 2 1 1\na 0 -4\n', 2, /the size must be a whole number/);
  refuses('0 2 1 1\na 0 1.5\n', 2, /the size must be a whole number/);
  refuses('0 2 3 1\na 0 1\nf 0\n', 3, /truncated: the header announces 3 operations, the file holds 2/);
  refuses('0 2 1 1\na 0 1\nf 0\n', 3, /more operations than the 1 the header announces/);
});

test('trace files are read directly, gzipped or not; unreadable ones are a TraceError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-trace-'));
  const text = '0 1 2 1\na 0 64\nf 0\n';
  writeFileSync(join(dir, 'plain.rep'), text);
  writeFileSync(join(dir, 'packed.rep.gz'), gzipSync(text));
  assert.equal([...readTrace(join(dir, 'plain.rep')).sizes], [64, 0]);
  const packed = readTrace(join(dir, 'packed.rep.gz'));
  assert.equal([packed.name, [...packed.sizes]], ['packed', [64, 0]]);
  assert.throws(() => readTrace(join(dir, 'missing.rep')), (e: Error) => e instanceof TraceError && /missing\.rep:0: cannot read/.test(e.message));
});

test('peak payload is the most live requested bytes at once, and when', () => {
  const trace = parseTrace('0 3 5 1\na 0 100\na 1 200\nf 0\na 2 50\nr 1 400\n', 'hand.rep');
  assert.equal(peakPayload(trace), { bytes: 450, at: 4 });
});

/** A bump allocator over an ArrayBuffer: never reuses, so its footprint is easy to compute by hand. */
function bumpFactory(name: string, misbehave?: 'overlap' | 'corrupt' | 'misalign'): AllocatorFactory {
  const BASE = 4096;
  return {
    name,
    create: (): ReplayAllocator => {
      const buffer = new ArrayBuffer(1 << 20);
      const bytes = new Uint8Array(buffer);
      let top = 0;
      let calls = 0;
      const sizes = new Map<number, number>();
      const malloc = (n: number): number => {
        calls++;
        if (misbehave === 'overlap' && calls === 3) return BASE; // hands out the first block again
        const p = BASE + top + (misbehave === 'misalign' && calls === 2 ? 4 : 0);
        top += Math.ceil(n / 16) * 16 + (misbehave === 'misalign' ? 16 : 0);
        sizes.set(p, n);
        if (misbehave === 'corrupt' && calls === 3) bytes[0] = bytes[0]! ^ 0xff; // scribbles on the first block
        return p;
      };
      return {
        requests: {
          malloc,
          realloc: (p, n) => {
            const q = malloc(n);
            bytes.copyWithin(q - BASE, p - BASE, p - BASE + Math.min(n, sizes.get(p) ?? 0));
            return q;
          },
          free: () => {},
        },
        alignment: 16,
        view: (p, n) => new Uint8Array(buffer, p - BASE, n),
        peakFootprint: () => top,
        dispose: () => {},
      };
    },
  };
}

test('utilization is peak live payload over peak footprint, computed by hand', async () => {
  const trace = parseTrace('0 3 5 1\na 0 100\na 1 200\nf 0\na 2 50\nr 1 400\n', 'hand.rep');
  const result = await replay(trace, bumpFactory('bump'), { repeat: 1 });
  // The bump allocator hands out align16 of each request and never reuses: 112 + 208 + 64 + 400.
  assert.equal([result.verified, result.peakPayload, result.peakFootprint], [true, 450, 784]);
  assert.is(result.utilization, 450 / 784);
  assert.ok(result.kops > 0 && result.seconds >= 0);
});

test('warmup runs untimed passes for at least that many milliseconds before the timed ones', async () => {
  const trace = parseTrace('0 2 5 1\na 0 100\nr 0 300\na 1 200\nf 0\nf 1\n', 'w.rep');
  // ffi-heap, counting the timed allocator's mallocs: each pass makes two.
  const counted = (): { factory: AllocatorFactory; mallocs: () => number } => {
    let made = 0;
    let mallocs = 0;
    const inner = allocatorNamed('ffi-heap');
    return {
      mallocs: () => mallocs,
      factory: {
        name: 'counted',
        create: async (t) => {
          const a = await inner.create(t);
          if (made++ === 0) return a;
          const heap = a.requests;
          return { ...a, requests: { malloc: (n) => (mallocs++, heap.malloc(n)), realloc: (p, n) => heap.realloc(p, n), free: (p) => heap.free(p) } };
        },
      },
    };
  };
  const plain = counted();
  const t0 = performance.now();
  const quick = await replay(trace, plain.factory, { repeat: 1 });
  const quickMs = performance.now() - t0;
  // At least 100,000 requests of warm-up (20,000 passes of 5), then the timed pass.
  assert.is(plain.mallocs(), 2 * (20_000 + 1));
  // Longer than those passes take, by far: the warm-up's clock, not its count, ends it.
  const warmup = 3 * quickMs + 100;
  const warm = counted();
  const t1 = performance.now();
  const slow = await replay(trace, warm.factory, { repeat: 1, warmup });
  assert.ok(performance.now() - t1 >= warmup);
  assert.ok(warm.mallocs() > plain.mallocs(), `${warm.mallocs()} mallocs with warm-up, ${plain.mallocs()} without`);
  assert.equal([quick.verified, slow.verified], [true, true]);
});

test('the timed passes get the sizes as integers when every size is a whole number below 2^32, else exactly as the trace has them', () => {
  const small = Float64Array.of(0, 16, 4104, 2 ** 32 - 1);
  const asIntegers = timedSizes(small);
  assert.instance(asIntegers, Uint32Array);
  assert.equal(Array.from(asIntegers), Array.from(small));
  const huge = Float64Array.of(16, 2 ** 32 + 16);
  assert.is(timedSizes(huge), huge, 'a size past 2^32 would wrap in a Uint32Array');
});

test('the verifier reports an allocator that overlaps, corrupts or misaligns blocks as not verified', async () => {
  const trace = parseTrace('0 3 5 1\na 0 100\na 1 200\na 2 50\nf 0\nf 1\n', 'v.rep');
  const good = await replay(trace, bumpFactory('bump'), { repeat: 1 });
  assert.is(good.verified, true);
  const overlap = await replay(trace, bumpFactory('overlap', 'overlap'), { repeat: 1 });
  assert.is(overlap.verified, false);
  assert.match(overlap.error!, /payload of block 0 changed/);
  const corrupt = await replay(trace, bumpFactory('corrupt', 'corrupt'), { repeat: 1 });
  assert.is(corrupt.verified, false);
  assert.match(corrupt.error!, /operation 4 \(f 0\): the payload of block 0 changed at byte 0/);
  const misaligned = await replay(trace, bumpFactory('misaligned', 'misalign'), { repeat: 1 });
  assert.is(misaligned.verified, false);
  assert.match(misaligned.error!, /operation 2 \(a 1 200\): address 0x[0-9a-f]+ is not aligned to 16/);
});

test('gen-trace is deterministic, and every kind parses back and frees all it allocates', () => {
  for (const { kind } of TRACE_KINDS) {
    const a = formatTrace(generateTrace(kind, 500, 3));
    assert.is(formatTrace(generateTrace(kind, 500, 3)), a, `${kind}: same seed, same trace`);
    assert.is.not(formatTrace(generateTrace(kind, 500, 4)), a, `${kind}: another seed, another trace`);
    const trace = parseTrace(a, `${kind}.rep`);
    assert.ok(trace.kinds.length >= 500, kind);
    const allocated = trace.kinds.filter((k) => k === 0).length;
    const freed = trace.kinds.filter((k) => k === 2).length;
    assert.is(freed, allocated, `${kind} frees every block`);
    assert.is(trace.suggestedHeapSize, peakPayload(trace).bytes);
  }
  assert.throws(() => generateTrace('nonsense', 10, 1), (e: Error) => e instanceof RangeError && /unknown trace kind 'nonsense'/.test(e.message));
});

test('the committed fixtures are what gen-trace makes, and replay verified on every allocator', async () => {
  const files = readdirSync(fixtures).filter((f) => f.endsWith('.rep')).sort();
  assert.equal(files.map((f) => f.replace('.rep', '')), TRACE_KINDS.map((k) => k.kind).sort());
  for (const file of files) {
    const text = readFileSync(join(fixtures, file), 'utf8');
    assert.is(formatTrace(generateTrace(file.replace('.rep', ''), 2000, 7)), text, `${file} is reproducible`);
    const trace = parseTrace(text, file);
    for (const factory of ALLOCATORS) {
      const result = await replay(trace, factory, { repeat: 1 });
      assert.ok(result.verified, `${file} / ${factory.name}: ${result.error}`);
      assert.ok(result.utilization > 0 && result.utilization <= 1, `${file} / ${factory.name}: utilization ${result.utilization}`);
    }
  }
});

test('a snapshot at the peak payload draws as well-formed SVG, one box group per block', async () => {
  const trace = readTrace(join(fixtures, 'coalesce.rep'));
  const result = await replay(trace, allocatorNamed('ffi-heap'), { repeat: 1, snapshotAtPeak: true });
  assert.ok(result.snapshot !== undefined);
  const live = result.snapshot!.regions.flatMap((r) => r.blocks).filter((b) => !b.free).reduce((s, b) => s + b.size, 0);
  assert.ok(live >= result.peakPayload, 'at the peak, the used blocks hold the peak payload');
});

/** A strict little XML well-formedness check: tags nest and close, attributes are quoted, text is escaped. */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const token = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>|([^<]+)/gy;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = token.exec(xml)) !== null) {
    consumed = token.lastIndex;
    const [, closing, name, , selfClosing, text] = match;
    if (text !== undefined) {
      assert.not.match(text, /&(?!(amp|lt|gt|quot|apos);)/, 'an unescaped & in text');
    } else if (closing) {
      assert.is(stack.pop(), name, `</${name}> closes the open tag`);
    } else if (!selfClosing) {
      stack.push(name!);
    }
  }
  assert.is(consumed, xml.length, `well-formed up to offset ${consumed}: ${xml.slice(consumed, consumed + 60)}`);
  assert.equal(stack, [], 'every tag is closed');
}

test('toSVG draws well-formed XML with one box group per block, names on hover', () => {
  for (const preset of ['fast', 'classic'] as const) {
    const heap = new Heap({ preset });
    const ptrs = Array.from({ length: 40 }, (_, i) => heap.malloc(50 + 37 * i, `block <${i}> & "friends"`));
    for (const p of ptrs.filter((_, i) => i % 3 === 0)) heap.free(p);
    heap.malloc(400_000, 'large');
    const svg = heap.toSVG({ title: 'test' });
    assertWellFormed(svg);
    const blocks = heap.snapshot().regions.flatMap((r) => r.blocks);
    assert.is((svg.match(/<g class="block (used|free)">/g) ?? []).length, blocks.length, preset);
    assert.is((svg.match(/<g class="block used">/g) ?? []).length, blocks.filter((b) => !b.free).length);
    assert.match(svg, /<title>0x[0-9a-f]+-0x[0-9a-f]+ \d+ bytes USED &apos;block &lt;1&gt; &amp; &quot;friends&quot;&apos;<\/title>/);
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    heap.destroy();
  }
});

test('ffi-heap replay: JSON lines, a table with totals, an SVG, and a bad file named without stopping the rest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ffi-heap-replay-'));
  writeFileSync(join(dir, 'bad.rep'), '0 2 2 1\na 0 8\nf 1\n');
  const svg = join(dir, 'peak.svg');
  const files = [join(fixtures, 'churn.rep'), join(dir, 'bad.rep'), join(fixtures, 'queue.rep')];
  const json = spawnSync(process.execPath, [cli, 'replay', '--json', '--repeat', '1', '--allocator', 'ffi-heap', '--allocator', 'libc', '--svg', svg, ...files], { encoding: 'utf8' });
  assert.is(json.status, 1, 'a bad file makes the run fail');
  assert.match(json.stderr, /bad\.rep:3: unknown id 1: it was never allocated/);
  const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.map((l) => `${l.trace}/${l.allocator}`), ['churn/ffi-heap', 'churn/libc', 'queue/ffi-heap', 'queue/libc']);
  for (const l of lines) {
    assert.equal(Object.keys(l), ['allocator', 'trace', 'ops', 'kops', 'utilization', 'peakPayload', 'peakFootprint', 'verified']);
    assert.is(l.verified, true);
  }
  assertWellFormed(readFileSync(svg, 'utf8'));

  const tableRun = spawnSync(process.execPath, [cli, 'replay', '--repeat', '1', join(fixtures, 'mixed.rep')], { encoding: 'utf8' });
  assert.is(tableRun.status, 0, tableRun.stderr);
  assert.match(tableRun.stdout, /^trace +allocator +ops +kops\/s +util/);
  assert.match(tableRun.stdout, /\nmixed +ffi-heap +\d+ +\d+ +0\.\d{3} .* yes\n/);
  assert.match(tableRun.stdout, /\nTOTAL +ffi-heap +\d+ +\d+ +0\.\d{3} +1 traces\n$/);
  assert.match(tableRun.stderr, /mixed \/ ffi-heap: verifying/, 'progress goes to stderr');

  const usage = spawnSync(process.execPath, [cli, 'replay', '--allocator', 'nope', join(fixtures, 'mixed.rep')], { encoding: 'utf8' });
  assert.is.not(usage.status, 0);
  assert.match(usage.stderr, /unknown allocator 'nope'/);
});

test('ffi-heap gen-trace writes a trace to stdout and refuses unknown kinds', () => {
  const run = spawnSync(process.execPath, [cli, 'gen-trace', 'queue', '--ops', '300', '--seed', '5'], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  assert.is(run.stdout, formatTrace(generateTrace('queue', 300, 5)));
  const bad = spawnSync(process.execPath, [cli, 'gen-trace', 'nonsense'], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /unknown trace kind 'nonsense'; known: churn, binary/);
});

test.run();
