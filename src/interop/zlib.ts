// zlib allocating from an ffi-heap. `zlibAllocator(heap)` gives the zalloc/zfree/opaque values of
// a z_stream as koffi callbacks into the heap, so deflate's and inflate's state lives there;
// `loadZlib()` binds the system's libz safely; `deflateInHeap`/`inflateInHeap` are a whole round
// trip with the stream, the buffers and zlib's state all in the heap. (An interop module: like the
// OS layer, it binds a C library with koffi; the core does not load it.)
//
// Why `loadZlib` matters: Node is built with its own copy of zlib and exports its symbols to every
// library loaded into the process. A plain dlopen of the system's libz.so.1 then has its internal
// calls (deflateInit_ calling deflateInit2_, deflate calling its helpers) bound to Node's copy, a
// different version whose state has another layout, and deflate() crashes. RTLD_DEEPBIND (koffi's
// `deep` option) makes the library prefer its own symbols.

import koffi, { type LibraryHandle } from 'koffi';
import type { Heap } from '../heap/heap.js';

const AllocFunc = koffi.proto('intptr_t ffi_heap_zlib_alloc(intptr_t opaque, unsigned int items, unsigned int size)');
const FreeFunc = koffi.proto('void ffi_heap_zlib_free(intptr_t opaque, intptr_t address)');

/**
 * zlib's z_stream, as zlib.h lays it out, with every pointer declared 'uintptr_t': heap.decode
 * gives the addresses as Numbers (it refuses pointer types, which koffi would follow).
 */
export const ZStream = koffi.struct('ffi_heap_z_stream', {
  next_in: 'uintptr_t',
  avail_in: 'unsigned int',
  total_in: 'unsigned long',
  next_out: 'uintptr_t',
  avail_out: 'unsigned int',
  total_out: 'unsigned long',
  msg: 'uintptr_t',
  state: 'uintptr_t',
  zalloc: 'uintptr_t',
  zfree: 'uintptr_t',
  opaque: 'uintptr_t',
  data_type: 'int',
  adler: 'unsigned long',
  reserved: 'unsigned long',
});
const STREAM_SIZE = koffi.sizeof(ZStream);
const offset = (field: string): number => koffi.offsetof(ZStream, field);
const AT = {
  nextIn: offset('next_in'), availIn: offset('avail_in'), nextOut: offset('next_out'), availOut: offset('avail_out'),
  zalloc: offset('zalloc'), zfree: offset('zfree'), opaque: offset('opaque'),
};

/** zlib's return code for success. */
export const Z_OK = 0;
/** zlib's return code when a stream has been wholly compressed or decompressed. */
export const Z_STREAM_END = 1;
/** The flush argument for deflate/inflate calls that may hold output back. */
export const Z_NO_FLUSH = 0;
/** The flush argument that finishes the stream. */
export const Z_FINISH = 4;
/** zlib's return code when no progress was possible (not fatal: more input or output room is needed). */
export const Z_BUF_ERROR = -5;
/** The compression level zlib picks itself (6). */
export const Z_DEFAULT_COMPRESSION = -1;
const RETURN_CODES: Record<number, string> = {
  2: 'Z_NEED_DICT', [-1]: 'Z_ERRNO', [-2]: 'Z_STREAM_ERROR', [-3]: 'Z_DATA_ERROR (the input is not valid deflate data)',
  [-4]: 'Z_MEM_ERROR (an allocation failed)', [-5]: 'Z_BUF_ERROR', [-6]: 'Z_VERSION_ERROR',
};

/** What zlibAllocator hands out: the three z_stream fields, and the callbacks' keeper. */
export interface ZlibAllocator {
  readonly heap: Heap;
  /** Native address of the allocation callback, for z_stream.zalloc. */
  readonly zalloc: number;
  /** Native address of the free callback, for z_stream.zfree. */
  readonly zfree: number;
  /** The value for z_stream.opaque: 0, as the callbacks know their heap. */
  readonly opaque: number;
  /**
   * The first error a callback met (a callback may not throw into C, so it is kept here and zlib
   * is told the allocation failed, which it reports as Z_MEM_ERROR), or undefined.
   */
  readonly error: Error | undefined;
  /** Writes zalloc, zfree and opaque into the z_stream at `stream`, a live block of the heap. */
  install(stream: number): void;
  /** How many blocks zlib allocated through the callbacks are still live: nonzero while a stream is open. */
  readonly liveBlocks: number;
  /**
   * Unregisters the callbacks. Refused (an Error, nothing changed) while a block zlib allocated
   * through them is live, that is while a stream is open: end it with deflateEnd or inflateEnd
   * first. Twice is harmless; install() is refused afterwards.
   */
  release(): void;
}

/** Largest request the callbacks accept; zlib asks for far less (its window is 32 KiB a slot). */
const MAX_REQUEST = 2 ** 32 - 1;

/** The zalloc/zfree/opaque values that make `heap` zlib's allocator for the streams given them. */
export function zlibAllocator(heap: Heap): ZlibAllocator {
  let error: Error | undefined;
  const failed = (e: unknown): void => {
    error ??= e instanceof Error ? e : new Error(String(e));
  };
  // The blocks handed to zlib and not yet given back: release() waits for none.
  const live = new Set<number>();
  // One call into the heap per callback, with no closure or array made per call.
  const zalloc = koffi.register((_opaque: number, items: number, size: number): number => {
    try {
      const bytes = items * size;
      const ptr = bytes > MAX_REQUEST ? 0 : heap.malloc(bytes);
      if (ptr !== 0) live.add(ptr);
      return ptr;
    } catch (e) {
      failed(e);
      return 0;
    }
  }, koffi.pointer(AllocFunc));
  const zfree = koffi.register((_opaque: number, address: number): void => {
    try {
      heap.free(address);
      live.delete(address);
    } catch (e) {
      failed(e);
    }
  }, koffi.pointer(FreeFunc));
  const zallocAddress = Number(koffi.address(zalloc));
  const zfreeAddress = Number(koffi.address(zfree));
  let released = false;
  return {
    heap,
    zalloc: zallocAddress,
    zfree: zfreeAddress,
    opaque: 0,
    get error() {
      return error;
    },
    install(stream: number): void {
      if (released) throw new Error('zlibAllocator: install() after release()');
      const fields = streamFields(heap, stream); // checks that the block is live and large enough
      setPointer(fields, AT.zalloc, zallocAddress);
      setPointer(fields, AT.zfree, zfreeAddress);
      setPointer(fields, AT.opaque, 0);
    },
    get liveBlocks() {
      return live.size;
    },
    release(): void {
      if (released) return;
      if (live.size > 0) {
        throw new Error(`zlibAllocator: release() refused: ${live.size} block${live.size === 1 ? '' : 's'} zlib allocated through it ` +
          'are still live, so a stream is open; end it (deflateEnd or inflateEnd) first');
      }
      released = true;
      koffi.unregister(zalloc);
      koffi.unregister(zfree);
    },
  };
}

/** The z_stream at `stream`, a live block of `heap`, as a DataView. */
function streamFields(heap: Heap, stream: number): DataView {
  const bytes = heap.view(stream, Uint8Array, STREAM_SIZE);
  return new DataView(bytes.buffer, bytes.byteOffset, STREAM_SIZE);
}

/** A 64-bit pointer field, written as two little-endian halves (addresses are below 2^53). */
function setPointer(view: DataView, at: number, address: number): void {
  view.setUint32(at, address % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(address / 2 ** 32), true);
}

/** The zlib functions the helpers below call, bound with every pointer as a Number. */
export interface Zlib {
  readonly library: LibraryHandle;
  /** zlibVersion(): the version of the library loaded. */
  readonly version: string;
  deflateInit(stream: number, level: number): number;
  deflate(stream: number, flush: number): number;
  deflateEnd(stream: number): number;
  inflateInit(stream: number): number;
  inflate(stream: number, flush: number): number;
  inflateEnd(stream: number): number;
}

/**
 * Binds zlib from `library` (a path, default the system's libz.so.1, or a koffi handle). A path is
 * loaded with RTLD_DEEPBIND, so the library's calls to itself are not captured by the zlib that
 * Node carries (see the top of this file).
 */
export function loadZlib(library: LibraryHandle | string = 'libz.so.1'): Zlib {
  const lib = typeof library === 'string' ? koffi.load(library, { deep: true }) : library;
  const version = (lib.func('const char *zlibVersion(void)') as () => string)();
  const deflateInit = lib.func('int deflateInit_(intptr_t stream, int level, const char *version, int stream_size)');
  const inflateInit = lib.func('int inflateInit_(intptr_t stream, const char *version, int stream_size)');
  return {
    library: lib,
    version,
    deflateInit: (stream, level) => deflateInit(stream, level, version, STREAM_SIZE) as number,
    deflate: lib.func('int deflate(intptr_t stream, int flush)') as (stream: number, flush: number) => number,
    deflateEnd: lib.func('int deflateEnd(intptr_t stream)') as (stream: number) => number,
    inflateInit: (stream) => inflateInit(stream, version, STREAM_SIZE) as number,
    inflate: lib.func('int inflate(intptr_t stream, int flush)') as (stream: number, flush: number) => number,
    inflateEnd: lib.func('int inflateEnd(intptr_t stream)') as (stream: number) => number,
  };
}

const CHUNK = 256 * 1024;

/**
 * Compresses `input` (zlib format) with the stream, the buffers and zlib's state all in the
 * allocator's heap; everything is freed before it returns, whether it succeeds or throws. Given a
 * heap instead of an allocator, zlib keeps its state with its own allocator (C's malloc) and only
 * the stream and buffers are in the heap: the comparison `npm run bench:zlib` makes.
 */
export function deflateInHeap(zlib: Zlib, allocator: ZlibAllocator | Heap, input: Uint8Array, level = Z_DEFAULT_COMPRESSION): Uint8Array {
  return run(zlib, allocator, input, 'deflate', level);
}

/** Decompresses zlib-format `input`, as deflateInHeap compresses, all in the allocator's heap. */
export function inflateInHeap(zlib: Zlib, allocator: ZlibAllocator | Heap, input: Uint8Array): Uint8Array {
  return run(zlib, allocator, input, 'inflate', 0);
}

function run(zlib: Zlib, target: ZlibAllocator | Heap, input: Uint8Array, mode: 'deflate' | 'inflate', level: number): Uint8Array {
  if (!(input instanceof Uint8Array)) throw new TypeError(`${mode}InHeap: expected a Uint8Array, got ${typeof input}`);
  // avail_in is a C unsigned int.
  if (input.length > 0xffffffff) throw new RangeError(`${mode}InHeap: at most 4 GiB - 1 bytes at once, got ${input.length}`);
  const allocator = 'install' in target ? target : null;
  const heap = allocator?.heap ?? (target as Heap);
  const blocks: number[] = [];
  const take = (bytes: number): number => {
    const ptr = heap.malloc(bytes);
    if (ptr === 0) throw new RangeError(`${mode}InHeap: the heap could not give ${bytes} bytes`);
    blocks.push(ptr);
    return ptr;
  };
  let started = false;
  let stream = 0;
  try {
    stream = take(STREAM_SIZE);
    const fields = streamFields(heap, stream);
    new Uint8Array(fields.buffer, fields.byteOffset, STREAM_SIZE).fill(0);
    allocator?.install(stream);
    const source = take(Math.max(input.length, 1));
    heap.view(source, Uint8Array, input.length).set(input);
    // Output goes through one buffer, sized to the job so small jobs ask little of the heap.
    const chunk = Math.min(CHUNK, Math.max(4096, mode === 'deflate' ? input.length + 1024 : 4 * input.length));
    const out = take(chunk);
    const outBytes = heap.view(out, Uint8Array, chunk);

    check(mode === 'deflate' ? zlib.deflateInit(stream, level) : zlib.inflateInit(stream), `${mode}Init`, allocator);
    started = true;
    setPointer(fields, AT.nextIn, source);
    fields.setUint32(AT.availIn, input.length, true);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      setPointer(fields, AT.nextOut, out);
      fields.setUint32(AT.availOut, chunk, true);
      const rc = mode === 'deflate' ? zlib.deflate(stream, Z_FINISH) : zlib.inflate(stream, Z_NO_FLUSH);
      const produced = chunk - fields.getUint32(AT.availOut, true);
      if (produced > 0) {
        parts.push(outBytes.slice(0, produced));
        total += produced;
      }
      if (rc === Z_STREAM_END) break;
      // Z_BUF_ERROR with nothing produced and no input left: the input ended before the stream did.
      if (rc === Z_BUF_ERROR && produced === 0 && fields.getUint32(AT.availIn, true) === 0) {
        throw new Error(`${mode}InHeap: the input ends before the end of the compressed stream`);
      }
      if (rc !== Z_OK && rc !== Z_BUF_ERROR) check(rc, mode, allocator);
    }
    const result = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      result.set(part, at);
      at += part.length;
    }
    return result;
  } finally {
    if (started) (mode === 'deflate' ? zlib.deflateEnd : zlib.inflateEnd)(stream);
    for (const ptr of blocks) heap.free(ptr);
  }
}

function check(rc: number, what: string, allocator: ZlibAllocator | null): void {
  if (rc === Z_OK) return;
  const error = new Error(`zlib ${what} failed: ${RETURN_CODES[rc] ?? `code ${rc}`}`);
  if (allocator?.error !== undefined) error.cause = allocator.error;
  throw error;
}
