// A struct-heavy call: an array of structs built in the heap, handed to C, read back.
// libc's qsort sorts the records by their key; the comparator reads the structs through koffi.
// Run: node examples/structs.mjs
import koffi from 'koffi';
import { Heap } from 'ffi-heap';

const Record = koffi.struct('example_record', { key: 'int32_t', weight: 'double', label: 'char[12]' });
const libc = koffi.load('libc.so.6');
const Compare = koffi.proto('int compare_records(const void *a, const void *b)');
const qsort = libc.func('void qsort(intptr_t base, size_t count, size_t size, compare_records *compare)');

const heap = new Heap();
// Everything allocated through the scope is freed when the callback ends. (In TypeScript, or a
// runtime with explicit resource management, `using scope = heap.scope()` does the same.)
heap.withScope((scope) => {
  const count = 5;
  const records = scope.calloc(count, koffi.sizeof(Record));
  ['pear', 'fig', 'apple', 'kiwi', 'plum'].forEach((label, i) => {
    heap.encode(records, Record, { key: (i * 37) % 11, weight: label.length * 1.5, label }, i);
  });
  qsort(records, count, koffi.sizeof(Record), (a, b) => koffi.decode(a, Record).key - koffi.decode(b, Record).key);
  for (let i = 0; i < count; i++) console.log(heap.decode(records, Record, i));
  console.log('blocks in use inside the scope:', heap.stats().usedBlocks);
});
console.log('blocks in use after it:', heap.stats().usedBlocks);
heap.destroy();
