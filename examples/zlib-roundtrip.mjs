// A zlib round trip with every byte of zlib's state in ffi-heap: compress a text, then inflate it
// back, printing the heap while the streams are open. Needs the system's zlib (Debian: zlib1g).
// Run: node examples/zlib-roundtrip.mjs
import { Heap } from 'ffi-heap';
import { ZStream, Z_FINISH, Z_OK, Z_STREAM_END, deflateInHeap, inflateInHeap, loadZlib, zlibAllocator } from 'ffi-heap/zlib';

const heap = new Heap();
const zlib = loadZlib(); // the system's libz.so.1, bound so that Node's own zlib cannot capture its calls
const allocator = zlibAllocator(heap);

const text = new TextEncoder().encode('ffi-heap hands zlib its memory. '.repeat(2000));

// By hand: a z_stream in the heap, zalloc/zfree pointing at the heap, one deflate call.
const stream = heap.alloc(ZStream);
allocator.install(stream);
const show = (when) => console.log(`${when.padEnd(24)} ${heap.stats().usedBlocks} blocks, ${heap.stats().inUse} bytes in use`);
show('before deflateInit');
if (zlib.deflateInit(stream, 9) !== Z_OK) throw new Error('deflateInit failed');
show('stream open');
const src = heap.malloc(text.length);
heap.bytes(src).set(text);
const dst = heap.malloc(text.length);
heap.encode(stream, ZStream, { ...heap.decode(stream, ZStream), next_in: src, avail_in: text.length, next_out: dst, avail_out: text.length });
if (zlib.deflate(stream, Z_FINISH) !== Z_STREAM_END) throw new Error('deflate did not finish');
const packedSize = Number(heap.decode(stream, ZStream).total_out);
zlib.deflateEnd(stream);
show('after deflateEnd');
console.log(`deflated ${text.length} bytes to ${packedSize}`);

// The same through the helpers, which free everything they allocate.
const packed = deflateInHeap(zlib, allocator, text);
const back = inflateInHeap(zlib, allocator, packed);
console.log(`round trip: ${packed.length} bytes inflated to ${back.length}, identical: ${back.every((b, i) => b === text[i])}`);
for (const ptr of [src, dst, stream]) heap.free(ptr);
show('all freed');
heap.check();
allocator.release();
