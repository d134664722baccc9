// Scopes and arenas under misuse: dispose() frees everything it can before it reports, arguments
// of the wrong kind are refused naming the call, and an arena works on every preset.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HeapError } from '../src/index.js';

const PRESETS = [{ preset: 'fast' }, { preset: 'classic' }, { debug: true }, { shared: true }] as const;
const label = (o: object): string => JSON.stringify(o);

/** Blocks in use as the snapshot shows them (the debug heap shows quarantined blocks as free). */
const usedBlocks = (heap: Heap): number => heap.snapshot().regions.reduce((n, r) => n + r.blocks.filter((b) => !b.free).length, 0);

const named = (kind: ErrorConstructor, call: RegExp) => (e: unknown): boolean => e instanceof kind && call.test((e as Error).message);

for (const options of PRESETS) {
  test(`scope.dispose() with a block freed directly frees all the others, then throws a HeapError naming dispose (${label(options)})`, () => {
    const heap = new Heap(options);
    const before = usedBlocks(heap);
    const scope = heap.scope();
    const blocks = Array.from({ length: 6 }, (_, i) => scope.malloc(40 + i * 100));
    heap.free(blocks[2]!);
    let thrown: unknown;
    try {
      scope.dispose();
    } catch (e) {
      thrown = e;
    }
    assert.instance(thrown, HeapError);
    const error = thrown as HeapError;
    assert.match(error.message, /^scope\.dispose\(\): /);
    assert.ok(error.code === 'ERR_DOUBLE_FREE' || error.code === 'ERR_INVALID_POINTER', error.code);
    assert.is(error.address, blocks[2]);
    assert.instance((error as Error).cause, HeapError);
    assert.is(usedBlocks(heap), before, 'the five other blocks were freed');
    for (const p of blocks) assert.throws(() => heap.usableSize(p), (e: unknown) => e instanceof HeapError, 'no block of the scope is live');
    scope.dispose(); // a second dispose does nothing, and does not throw
    assert.throws(() => scope.malloc(10), (e: unknown) => e instanceof HeapError && e.code === 'ERR_SCOPE_ENDED');
    heap.check();
    heap.destroy();
  });

  test(`scope.dispose() meeting several bad blocks throws one AggregateError holding each (${label(options)})`, () => {
    const heap = new Heap(options);
    const before = usedBlocks(heap);
    const scope = heap.scope();
    const blocks = Array.from({ length: 5 }, () => scope.malloc(64));
    heap.free(blocks[0]!);
    heap.free(blocks[3]!);
    let thrown: unknown;
    try {
      scope.dispose();
    } catch (e) {
      thrown = e;
    }
    assert.instance(thrown, AggregateError);
    const error = thrown as AggregateError;
    assert.match(error.message, /^scope\.dispose\(\): 2 of the scope's 5 blocks/);
    assert.is(error.errors.length, 2);
    assert.ok(error.errors.every((e) => e instanceof HeapError));
    assert.is(usedBlocks(heap), before);
    heap.destroy();
  });

  test(`heap.arena(64) works without a name, and arena(64, null) and alloc(n, '16') are TypeErrors (${label(options)})`, () => {
    const heap = new Heap(options);
    const arena = heap.arena(64);
    const p = arena.alloc(16);
    assert.ok(p > 0 && p % 16 === 0);
    assert.throws(() => heap.arena(64, null as never), named(TypeError, /^arena: the name/));
    assert.throws(() => heap.arena(64, 5 as never), named(TypeError, /^arena: the name/));
    assert.throws(() => arena.alloc(8, '16' as never), named(TypeError, /^arena\.alloc: alignment/));
    assert.throws(() => arena.alloc(8, null as never), named(TypeError, /^arena\.alloc: alignment/));
    assert.throws(() => arena.alloc(8, 24), named(RangeError, /^arena\.alloc: alignment/));
    assert.throws(() => arena.alloc('8' as never), named(TypeError, /^arena\.alloc: size/));
    assert.throws(() => heap.arena('64' as never), named(TypeError, /^arena: capacity/));
    assert.is(arena.bytesUsed, 16, 'refused calls took nothing');
    arena.dispose();
    arena.dispose();
    assert.throws(() => arena.alloc(8), (e: unknown) => e instanceof HeapError && e.code === 'ERR_SCOPE_ENDED');
    heap.check();
    heap.destroy();
  });
}

test('scope.free and scope.realloc refuse an address of the wrong kind with a TypeError or RangeError naming the call', () => {
  const heap = new Heap();
  const scope = heap.scope();
  assert.throws(() => scope.free('1' as never), named(TypeError, /^scope\.free: the address/));
  assert.throws(() => scope.free(-16), named(RangeError, /^scope\.free: the address/));
  assert.throws(() => scope.realloc(null as never, 10), named(TypeError, /^scope\.realloc: the address/));
  assert.throws(() => scope.realloc(1.5, 10), named(RangeError, /^scope\.realloc: the address/));
  const p = scope.malloc(10);
  assert.throws(() => scope.realloc(p, -1), (e: unknown) => e instanceof RangeError);
  assert.is(scope.size, 1, 'the refused realloc left the block owned');
  scope.dispose();
  assert.throws(() => scope.free(p), (e: unknown) => e instanceof HeapError && e.code === 'ERR_SCOPE_ENDED' && /scope\.free/.test(e.message));
  scope.free(0);
  heap.destroy();
});

test('a scope that has ended allocates nothing when asked', () => {
  const heap = new Heap();
  const scope = heap.scope();
  scope.dispose();
  const blocks = heap.stats().usedBlocks;
  assert.throws(() => scope.malloc(10), (e: unknown) => e instanceof HeapError);
  assert.throws(() => scope.cstring('x'), (e: unknown) => e instanceof HeapError);
  assert.throws(() => scope.realloc(0, 10), (e: unknown) => e instanceof HeapError);
  assert.is(heap.stats().usedBlocks, blocks);
  heap.destroy();
});

test('withScope refuses a non-function, and reports both errors when the body and dispose() throw', () => {
  const heap = new Heap();
  assert.throws(() => heap.withScope(null as never), named(TypeError, /^withScope: expected a function/));
  let thrown: unknown;
  try {
    heap.withScope((scope) => {
      heap.free(scope.malloc(10));
      throw new Error('the body');
    });
  } catch (e) {
    thrown = e;
  }
  assert.instance(thrown, AggregateError);
  const [body, dispose] = (thrown as AggregateError).errors as Error[];
  assert.is(body!.message, 'the body');
  assert.match(dispose!.message, /^scope\.dispose\(\)/);
  assert.is(heap.stats().usedBlocks, 0);
  heap.destroy();
});

test('withScope with an async body keeps the scope across awaits and ends it when the promise settles', async () => {
  const heap = new Heap();
  let kept: ReturnType<Heap['scope']> | undefined;
  const pending = heap.withScope(async (scope) => {
    kept = scope;
    const p = scope.cstring('across an await');
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Still live after the await: the scope has not ended yet.
    assert.is(heap.stats().usedBlocks, 1);
    return heap.readCString(p);
  });
  assert.instance(pending, Promise);
  assert.is(heap.stats().usedBlocks, 1);
  assert.is(await pending, 'across an await');
  assert.is(heap.stats().usedBlocks, 0);
  assert.throws(() => kept!.malloc(8), (e: unknown) => e instanceof HeapError && e.code === 'ERR_SCOPE_ENDED' && /^scope\.malloc/.test(e.message));
  heap.destroy();
});

test('withScope with an async body that rejects frees the scope and passes the rejection on', async () => {
  const heap = new Heap();
  const failure = new Error('the async body');
  let caught: unknown;
  try {
    await heap.withScope(async (scope) => {
      scope.malloc(100);
      await Promise.resolve();
      throw failure;
    });
  } catch (e) {
    caught = e;
  }
  assert.is(caught, failure);
  assert.is(heap.stats().usedBlocks, 0);
  heap.destroy();
});

test.run();
