// Sorting a heap-allocated array of doubles with libc's qsort and a JavaScript comparator.
// Run: node examples/qsort-doubles.mjs
import koffi from 'koffi';
import { Heap } from 'ffi-heap';

const libc = koffi.load('libc.so.6');
const Compare = koffi.proto('int compare_doubles(const void *a, const void *b)');
const qsort = libc.func('void qsort(intptr_t base, size_t count, size_t size, compare_doubles *compare)');

const heap = new Heap();
const values = Array.from({ length: 12 }, (_, i) => Math.round(Math.sin(i * 7.3) * 1000) / 10);
const array = heap.alloc('double', values.length, 'doubles');
heap.view(array, Float64Array, values.length).set(values);

qsort(array, values.length, 8, (a, b) => Math.sign(koffi.decode(a, 'double') - koffi.decode(b, 'double')));

console.log('before:', values.join(' '));
console.log('sorted:', [...heap.view(array, Float64Array, values.length)].join(' '));
heap.free(array);
heap.destroy();
