// SQLite allocating from an ffi-heap: `installSqliteAllocator(heap)` hands SQLite a
// sqlite3_mem_methods whose functions are koffi callbacks into the heap, so every allocation the
// library makes in this process comes from the heap. (An interop module: like the OS layer, it
// binds a C library with koffi; the core does not load it.)

import koffi, { type LibraryHandle } from 'koffi';
import type { Heap } from '../heap/heap.js';

const SQLITE_OK = 0;
const SQLITE_MISUSE = 21;
const SQLITE_CONFIG_MALLOC = 4;
const SQLITE_CONFIG_GETMALLOC = 5;

const XMalloc = koffi.proto('intptr_t ffi_heap_sqlite_xmalloc(int size)');
const XFree = koffi.proto('void ffi_heap_sqlite_xfree(intptr_t ptr)');
const XRealloc = koffi.proto('intptr_t ffi_heap_sqlite_xrealloc(intptr_t ptr, int size)');
const XSize = koffi.proto('int ffi_heap_sqlite_xsize(intptr_t ptr)');
const XRoundup = koffi.proto('int ffi_heap_sqlite_xroundup(int size)');
const XInit = koffi.proto('int ffi_heap_sqlite_xinit(void *data)');
const XShutdown = koffi.proto('void ffi_heap_sqlite_xshutdown(void *data)');
const MemMethods = koffi.struct('ffi_heap_sqlite3_mem_methods', {
  xMalloc: koffi.pointer(XMalloc),
  xFree: koffi.pointer(XFree),
  xRealloc: koffi.pointer(XRealloc),
  xSize: koffi.pointer(XSize),
  xRoundup: koffi.pointer(XRoundup),
  xInit: koffi.pointer(XInit),
  xShutdown: koffi.pointer(XShutdown),
  pAppData: 'void *',
});

/** What installSqliteAllocator leaves in place. */
export interface SqliteAllocator {
  /** The library handle the allocator was installed into. */
  readonly library: LibraryHandle;
  /**
   * The first error a callback met (a callback may not throw into C, so it is kept here and the
   * callback reports failure to SQLite), or undefined.
   */
  readonly error: Error | undefined;
  /** How many blocks SQLite allocated from the heap are still live. */
  readonly liveBlocks: number;
  /**
   * Gives SQLite back the allocator it had before, then unregisters the callbacks. Refused (an
   * Error, nothing changed) while a block SQLite allocated from the heap is live (a database is
   * open) or while SQLite is initialized: close every database and call sqlite3_shutdown() first.
   * Afterwards SQLite may be initialized again, with its own allocator. Twice is harmless.
   */
  release(): void;
}

/**
 * Makes `heap` SQLite's allocator, then initializes SQLite. `library` is a koffi library handle
 * or a path (default: the system's libsqlite3.so.0). Throws if SQLite was already initialized
 * (sqlite3_config refuses then), or if the configuration fails.
 */
export function installSqliteAllocator(heap: Heap, library: LibraryHandle | string = 'libsqlite3.so.0'): SqliteAllocator {
  // RTLD_DEEPBIND, as for zlib (src/interop/zlib.ts): should the runtime carry and export its own
  // SQLite, the library's calls to itself must still reach itself.
  const lib = typeof library === 'string' ? koffi.load(library, { deep: true }) : library;
  const config = lib.func('int sqlite3_config(int op, ...)');
  const initialize = lib.func('int sqlite3_initialize(void)');
  let error: Error | undefined;
  const failed = (e: unknown): void => {
    error ??= e as Error;
  };
  // The heap's side of each callback is one call, with no closure or array made per call; sizes
  // never exceed 2^31 (SQLite passes int). A callback must not throw into C: errors are kept.
  // Blocks handed to SQLite and not yet freed: release() waits for none.
  let live = 0;
  const callbacks = [
    koffi.register((size: number): number => {
      try {
        const ptr = heap.malloc(size);
        if (ptr !== 0) live++;
        return ptr;
      } catch (e) {
        failed(e);
        return 0;
      }
    }, koffi.pointer(XMalloc)),
    koffi.register((ptr: number): void => {
      try {
        if (ptr === 0) return;
        heap.free(ptr);
        live--;
      } catch (e) {
        failed(e);
      }
    }, koffi.pointer(XFree)),
    koffi.register((ptr: number, size: number): number => {
      try {
        const moved = heap.realloc(ptr, size);
        if (ptr === 0 && moved !== 0) live++;
        return moved;
      } catch (e) {
        failed(e);
        return 0;
      }
    }, koffi.pointer(XRealloc)),
    koffi.register((ptr: number): number => {
      try {
        return heap.usableSize(ptr);
      } catch (e) {
        failed(e);
        return 0;
      }
    }, koffi.pointer(XSize)),
    koffi.register((size: number): number => (size + 7) & ~7, koffi.pointer(XRoundup)),
    koffi.register((): number => SQLITE_OK, koffi.pointer(XInit)),
    koffi.register((): void => {}, koffi.pointer(XShutdown)),
  ];
  const unregister = (): void => {
    for (const callback of callbacks) koffi.unregister(callback);
  };
  // SQLite's allocator before ours (its default one, usually), restored by release(); the struct
  // is copied by sqlite3_config, so its bytes are all that is kept.
  const previous = koffi.alloc(MemMethods, 1);
  const saved = config(SQLITE_CONFIG_GETMALLOC, 'void *', previous) as number;
  const [xMalloc, xFree, xRealloc, xSize, xRoundup, xInit, xShutdown] = callbacks;
  const rc = saved !== SQLITE_OK ? saved : config(SQLITE_CONFIG_MALLOC, koffi.pointer(MemMethods),
    { xMalloc, xFree, xRealloc, xSize, xRoundup, xInit, xShutdown, pAppData: null }) as number;
  if (rc !== SQLITE_OK) {
    unregister();
    koffi.free(previous);
    throw new Error(rc === SQLITE_MISUSE
      ? 'installSqliteAllocator: SQLite is already initialized in this process; install the allocator before anything opens a database'
      : `installSqliteAllocator: sqlite3_config(SQLITE_CONFIG_MALLOC) failed with code ${rc}`);
  }
  const init = initialize() as number;
  if (init !== SQLITE_OK) throw new Error(`installSqliteAllocator: sqlite3_initialize failed with code ${init}`);
  let released = false;
  return {
    library: lib,
    get error() {
      return error;
    },
    get liveBlocks() {
      return live;
    },
    release(): void {
      if (released) return;
      if (live > 0) {
        throw new Error(`installSqliteAllocator: release() refused: ${live} block${live === 1 ? '' : 's'} SQLite allocated from the heap ` +
          'are still live (a database is open?); close every database and call sqlite3_shutdown() first');
      }
      // sqlite3_config refuses (SQLITE_MISUSE) while SQLite is initialized, when our methods may still be called.
      const restored = config(SQLITE_CONFIG_MALLOC, 'void *', previous) as number;
      if (restored !== SQLITE_OK) {
        throw new Error(restored === SQLITE_MISUSE
          ? 'installSqliteAllocator: release() refused: SQLite is still initialized; call sqlite3_shutdown() first'
          : `installSqliteAllocator: release() could not restore SQLite's allocator: sqlite3_config failed with code ${restored}`);
      }
      released = true;
      koffi.free(previous);
      unregister();
    },
  };
}
