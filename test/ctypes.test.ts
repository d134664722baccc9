// heap.decode and heap.encode refuse every type that is or holds a pointer (koffi would follow it,
// or point it at a temporary), telling the caller to use an integer address instead. Run in a
// child process: a decode that did follow a garbage pointer would kill it.

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const entry = new URL('../src/index.js', import.meta.url).href;
const koffiEntry = new URL('../../node_modules/koffi/index.js', import.meta.url).href;

test('decode and encode of pointer types and of structs, unions and arrays holding one are TypeErrors; memory of garbage is never followed', () => {
  const body = `
    const { Heap } = await import(${JSON.stringify(entry)});
    const { default: koffi } = await import(${JSON.stringify(koffiEntry)});
    const heap = new Heap();
    const p = heap.malloc(256);
    heap.bytes(p).fill(0x41); // no valid pointer anywhere in the block
    const Node = koffi.struct('ffi_heap_test_node', { value: 'int32_t', next: 'void *' });
    const Outer = koffi.struct('ffi_heap_test_outer', { id: 'int32_t', inner: Node });
    const Names = koffi.struct('ffi_heap_test_names', { names: koffi.array('const char *', 2) });
    const Either = koffi.union('ffi_heap_test_either', { n: 'int64_t', s: 'char *' });
    const Callback = koffi.pointer(koffi.proto('void ffi_heap_test_cb(int)'));
    const types = { 'char *': 'char *', 'void *': 'void *', str: 'str', 'const char *': 'const char *', 'int *': 'int *',
      str16: 'str16', Node, Outer, Names, Either, Callback };
    const out = {};
    for (const [name, type] of Object.entries(types)) {
      const result = {};
      for (const op of ['decode', 'encode']) {
        try {
          if (op === 'decode') heap.decode(p, type); else heap.encode(p, type, null);
          result[op] = 'accepted';
        } catch (e) {
          result[op] = e.constructor.name + ': ' + e.message;
        }
      }
      out[name] = result;
    }
    out.bytesKept = heap.bytes(p).every((b) => b === 0x41);
    const Plain = koffi.struct('ffi_heap_test_plain', { a: 'int32_t', b: 'double', tag: 'char[8]' });
    heap.encode(p, Plain, { a: 7, b: 1.5, tag: 'ok' });
    out.plain = heap.decode(p, Plain);
    heap.encode(p, 'uintptr_t', p);
    out.address = heap.decode(p, 'uintptr_t') === p;
    console.log(JSON.stringify(out));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', body], { encoding: 'utf8', timeout: 30_000 });
  assert.is(run.signal, null, `the child died by ${run.signal}: ${run.stderr}`);
  assert.is(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as Record<string, Record<string, string>> & { bytesKept: boolean; plain: unknown; address: boolean };
  const where: Record<string, RegExp> = { Node: /\(at next\)/, Outer: /\(at inner\.next\)/, Names: /\(at names\[\]\)/, Either: /\(at s\)/ };
  for (const name of ['char *', 'void *', 'str', 'const char *', 'int *', 'str16', 'Node', 'Outer', 'Names', 'Either', 'Callback']) {
    for (const op of ['decode', 'encode']) {
      const message = out[name]![op]!;
      assert.match(message, new RegExp(`^TypeError: ${op}: .* holds a pointer`), `${op} ${name}: ${message}`);
      assert.match(message, /'uintptr_t'/);
      assert.match(message, /readCString/);
      if (where[name]) assert.match(message, where[name]!, `${name}: names the member`);
    }
  }
  assert.match(out['char *']!.decode!, /^TypeError: decode: 'char \*' holds a pointer, /);
  assert.is(out.bytesKept, true, 'a refused encode wrote nothing');
  assert.equal(out.plain, { a: 7, b: 1.5, tag: 'ok' }, 'types without pointers still work');
  assert.is(out.address, true, "an address goes through as 'uintptr_t'");
});

test('a type koffi cannot read (another koffi\'s, or no type at all) is a TypeError naming the call; a koffi other than 3 is refused by name', async () => {
  const { Heap } = await import(entry);
  const { assertKoffiVersion } = await import(new URL('../src/os/libc.js', import.meta.url).href);
  const heap = new Heap();
  const p = heap.malloc(64);
  const foreign = { name: 'a type object of another koffi' };
  for (const [op, call] of [['alloc', () => heap.alloc(foreign)], ['encode', () => heap.encode(p, foreign, 1)], ['decode', () => heap.decode(p, foreign)]] as const) {
    assert.throws(call, (e: Error) => e instanceof TypeError && e.message.startsWith(`${op}: the type is not a type of the koffi that ffi-heap loads`), op);
  }
  assert.is(heap.stats().usedBlocks, 1, 'nothing allocated by the refused alloc');
  assert.throws(() => assertKoffiVersion('2.16.3'), (e: Error) => /^ffi-heap needs koffi 3, and the koffi this program loads is 2\.16\.3/.test(e.message));
  assert.throws(() => assertKoffiVersion(undefined), (e: Error) => /is of unknown version/.test(e.message));
  assertKoffiVersion('3.3.4');
  heap.destroy();
});

test.run();
