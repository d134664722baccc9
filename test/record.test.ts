// Recording (`record: true`): a program's own calls, through any helper, come back from
// heap.recorded() as a malloc-lab trace that parses, states each request as the program made it,
// and replays (verified) against any allocator. Heaps made without it are not wrapped at all.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../src/index.js';
import { OP_ALLOC, OP_FREE, OP_REALLOC, parseTrace } from '../src/trace/format.js';
import { allocatorNamed, replay } from '../src/trace/replay.js';
import { PRESETS, makeHeap } from './presets.js';

/** A short program through every kind of call that allocates or frees. */
function program(heap: Heap): void {
  const a = heap.malloc(100);
  const b = heap.calloc(4, 25);
  const c = heap.realloc(0, 40);
  const grown = heap.realloc(a, 5000); // moves, or grows in place: the same id either way
  heap.free(b);
  heap.realloc(c, 0);
  const text = heap.cstring('hello');
  heap.withScope((scope) => {
    scope.malloc(64);
  });
  heap.free(0);
  heap.free(text);
  heap.free(grown);
}

for (const preset of PRESETS.filter((p) => p.options.shared !== true)) {
  test(`${preset.name}: every call the program makes is kept, as it made it, and replays`, async () => {
    const heap = makeHeap(preset, { record: true });
    assert.is(heap.record, true);
    program(heap);
    const trace = parseTrace(heap.recorded(), 'recorded');
    const ops = Array.from(trace.kinds, (kind, i) => [kind, trace.ids[i], trace.sizes[i]]);
    assert.equal(ops, [
      [OP_ALLOC, 0, 100], [OP_ALLOC, 1, 100], [OP_ALLOC, 2, 40], [OP_REALLOC, 0, 5000], [OP_FREE, 1, 0], [OP_FREE, 2, 0],
      [OP_ALLOC, 3, 6], [OP_ALLOC, 4, 64], [OP_FREE, 4, 0], [OP_FREE, 3, 0], [OP_FREE, 0, 0],
    ]);
    assert.is(trace.idCount, 5);
    assert.is(trace.suggestedHeapSize, 5000 + 100 + 40, 'the peak of live requested bytes');
    // The program freed everything, and so did the heap underneath (debug: once its quarantine empties).
    if (preset.debugChecks) heap.trim();
    assert.is(heap.stats().usedBlocks, 0);
    for (const name of ['ffi-heap', 'ffi-heap-classic', 'libc']) {
      const result = await replay(trace, allocatorNamed(name), { repeat: 1 });
      assert.ok(result.verified, `${name}: ${result.error}`);
    }
    heap.destroy();
  });
}

test('failed requests and refused calls are not in the trace; live blocks stay live in it', () => {
  const heap = new Heap({ record: true, limit: 1 << 20 });
  const kept = heap.malloc(10);
  assert.is(heap.malloc(1 << 30), 0);
  assert.throws(() => heap.free(kept + 1));
  assert.is(heap.realloc(kept, 1 << 30), 0);
  const trace = parseTrace(heap.recorded(), 'recorded');
  assert.is(trace.kinds.length, 1);
  assert.is(trace.sizes[0], 10);
  heap.destroy();
  assert.throws(() => heap.recorded(), (e: Error) => e.name === 'HeapError');
});

test('without record, nothing is wrapped or kept; a shared heap refuses it', () => {
  const heap = new Heap();
  assert.is(heap.record, false);
  assert.is(heap.constructor.name, 'FastHeap');
  assert.throws(() => heap.recorded(), (e: Error) => e instanceof TypeError && /^recorded\(\): only a heap made with \{ record: true \}/.test(e.message));
  heap.destroy();
  assert.throws(() => new Heap({ shared: true, record: true }), (e: Error) => e instanceof TypeError && /does not record/.test(e.message));
  assert.throws(() => new Heap({ record: 1 as unknown as boolean }), (e: Error) => e instanceof TypeError);
});

test('recorded({ names: true }) keeps each name given, as #name lines that parse back onto their requests; recorded() writes none', () => {
  const heap = new Heap({ preset: 'classic', record: true });
  const a = heap.malloc(100, 'Test Allocation: 0');
  const b = heap.malloc(10);
  heap.realloc(a, 300);
  heap.realloc(b, 40, 'grown "b"\nline two');
  heap.calloc(2, 8, 'zeroed');
  const plain = heap.recorded();
  assert.not.match(plain, /#/);
  assert.is(parseTrace(plain, 'plain').names, undefined);
  const text = heap.recorded({ names: true });
  assert.match(text, /^#name "Test Allocation: 0"\na 0 100$/m);
  const trace = parseTrace(text, 'named');
  assert.equal([...trace.names!], [[0, 'Test Allocation: 0'], [3, 'grown "b"\nline two'], [4, 'zeroed']]);
  assert.throws(() => heap.recorded({ names: 'yes' } as never), (e: Error) => e instanceof TypeError && /names must be a boolean/.test(e.message));
  assert.throws(() => heap.recorded(7 as never), (e: Error) => e instanceof TypeError && /options must be an object/.test(e.message));
  heap.destroy();
});

test('#name lines: comments pass, a name before a free, at the end, or not a JSON string is an error naming the line', () => {
  const ok = parseTrace('0\n1\n2\n1\n# a comment\n#name "x y"\na 0 8\nf 0\n', 'ok.rep');
  assert.equal([...ok.names!], [[0, 'x y']]);
  assert.throws(() => parseTrace('0\n1\n2\n1\na 0 8\n#name "x"\nf 0\n', 'f.rep'), (e: Error) => /f\.rep:6: #name names a free/.test(e.message));
  assert.throws(() => parseTrace('0\n1\n1\n1\na 0 8\n#name "x"\n', 'end.rep'), (e: Error) => /end\.rep:6: #name with no request after it/.test(e.message));
  assert.throws(() => parseTrace('0\n1\n1\n1\n#name x\na 0 8\n', 'bad.rep'), (e: Error) => /bad\.rep:5: #name needs a JSON string, found 'x'/.test(e.message));
});

test.run();
