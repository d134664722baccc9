// The libc functions ffi-heap needs, bound once with koffi. This file, ./memory.ts and ./support.ts
// are the only code that talks to the operating system; everything above works on Numbers and
// typed arrays.
//
// Every pointer is declared as `intptr_t`, so koffi passes and returns plain Numbers (user-space
// addresses fit in 47 bits) instead of boxed pointers or BigInts.

import koffi, { type LibraryHandle } from 'koffi';

/**
 * Throws unless `version` is a koffi 3 release: koffi is the program's own (a peer dependency),
 * and koffi 2 passes and returns pointers differently.
 */
export function assertKoffiVersion(version: unknown): void {
  const major = typeof version === 'string' ? Number(version.split('.')[0]) : NaN;
  if (major !== 3) {
    throw new Error(`ffi-heap needs koffi 3, and the koffi this program loads is ${typeof version === 'string' ? version : 'of unknown version'}: ` +
      'install koffi 3 beside ffi-heap (npm install koffi@3)');
  }
}

assertKoffiVersion((koffi as { version?: unknown }).version);

/** Constants for mmap(2) that differ between the platforms we support. */
export interface MmapConstants {
  readonly PROT_NONE: number;
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_PRIVATE: number;
  readonly MAP_ANONYMOUS: number;
  readonly MAP_FIXED: number;
  readonly MAP_NORESERVE: number;
  readonly SC_PAGESIZE: number;
  /** madvise advice that gives a range's memory back at once, the range staying mapped. */
  readonly MADV_GIVE_BACK: number;
}

const LINUX: MmapConstants = {
  PROT_NONE: 0, PROT_READ: 1, PROT_WRITE: 2,
  MAP_PRIVATE: 0x02, MAP_ANONYMOUS: 0x20, MAP_FIXED: 0x10, MAP_NORESERVE: 0x4000,
  SC_PAGESIZE: 30,
  // MADV_DONTNEED: the pages are freed now and read as zeros when next touched.
  MADV_GIVE_BACK: 4,
};

// macOS spells MAP_ANONYMOUS as MAP_ANON (0x1000) and has no MAP_NORESERVE (0 makes it a no-op).
const DARWIN: MmapConstants = {
  PROT_NONE: 0, PROT_READ: 1, PROT_WRITE: 2,
  MAP_PRIVATE: 0x02, MAP_ANONYMOUS: 0x1000, MAP_FIXED: 0x10, MAP_NORESERVE: 0,
  SC_PAGESIZE: 29,
  // MADV_FREE: the kernel takes the pages back when it needs them.
  MADV_GIVE_BACK: 5,
};

/** The platforms whose libc and mmap constants this file knows. */
const PLATFORMS = ['linux', 'darwin'];
const ARCHES = ['x64', 'arm64'];

/** Why ffi-heap cannot run on this platform and architecture, or undefined if it can. */
export function platformProblem(platform: string, arch: string): string | undefined {
  if (PLATFORMS.includes(platform) && ARCHES.includes(arch)) return undefined;
  return `ffi-heap runs on 64-bit Linux and macOS (x64 or arm64), where it knows libc and the mmap flags; this is ${platform} on ${arch}`;
}

const LIBRARY: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'libc.so.6',
  darwin: 'libSystem.B.dylib',
};

/** The bound functions. Each call costs one FFI crossing (50 to 100 ns): keep them off hot paths. */
export interface Libc {
  readonly constants: MmapConstants;
  mmap(addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number;
  munmap(addr: number, length: number): number;
  memcpy(dst: number, src: number, n: number): number;
  memset(dst: number, byte: number, n: number): number;
  /** Linux's mremap with MREMAP_MAYMOVE: resizes a mapping, moving it if need be. Absent elsewhere. */
  mremap: ((addr: number, oldLength: number, newLength: number, flags: number) => number) | undefined;
  sysconf(name: number): number;
  /** mincore: 0 when every page of the range is mapped (whatever its protection), -1 (ENOMEM) when not. */
  mincore(addr: number, length: number, vec: Uint8Array): number;
  madvise(addr: number, length: number, advice: number): number;
  /** The calling thread's errno, read right after a failed call. */
  errno(): number;
  /** The koffi library handle, for interop modules that bind more of libc. */
  readonly library: LibraryHandle;
}

let bound: Libc | undefined;

/** Binds libc on first use. Throws a plain Error naming the platform where we cannot. */
export function libc(): Libc {
  if (bound !== undefined) return bound;
  const platform = process.platform;
  const path = LIBRARY[platform];
  const problem = platformProblem(platform, process.arch);
  if (path === undefined || problem !== undefined) throw new Error(problem);
  const library = koffi.load(path);
  bound = {
    constants: platform === 'darwin' ? DARWIN : LINUX,
    mmap: library.func('intptr_t mmap(intptr_t addr, size_t length, int prot, int flags, int fd, intptr_t offset)'),
    munmap: library.func('int munmap(intptr_t addr, size_t length)'),
    memcpy: library.func('intptr_t memcpy(intptr_t dst, intptr_t src, size_t n)'),
    memset: library.func('intptr_t memset(intptr_t dst, int c, size_t n)'),
    mremap: platform === 'linux' ? library.func('intptr_t mremap(intptr_t addr, size_t old_length, size_t new_length, int flags)') : undefined,
    sysconf: library.func('long sysconf(int name)'),
    mincore: library.func('int mincore(intptr_t addr, size_t length, _Out_ uint8_t *vec)'),
    madvise: library.func('int madvise(intptr_t addr, size_t length, int advice)'),
    errno: () => koffi.errno(),
    library,
  };
  return bound;
}

/**
 * Makes an ArrayBuffer that aliases `length` bytes of native memory at `address`. koffi gives it no
 * finalizer, so it never frees anything; reading it after the memory is unmapped kills the process.
 */
export function nativeView(address: number, length: number): ArrayBuffer {
  return koffi.view(address, length) as ArrayBuffer;
}

/** The C library's own allocator, bound for comparison (the replay tool's `libc` peer). */
export interface CAllocator {
  malloc(size: number): number;
  realloc(ptr: number, size: number): number;
  free(ptr: number): void;
  /** malloc_usable_size: the bytes usable in the block at `ptr`. */
  usableSize(ptr: number): number;
}

let cAllocator: CAllocator | undefined;

export function cLibraryAllocator(): CAllocator {
  if (cAllocator === undefined) {
    const { library } = libc();
    cAllocator = {
      malloc: library.func('intptr_t malloc(size_t size)'),
      realloc: library.func('intptr_t realloc(intptr_t ptr, size_t size)'),
      free: library.func('void free(intptr_t ptr)'),
      usableSize: library.func('size_t malloc_usable_size(intptr_t ptr)'),
    };
  }
  return cAllocator;
}

/** A C type as koffi describes it: a name such as 'double' or 'int32_t', or a koffi type object. */
export type CType = string | object;

/**
 * Size and alignment of a C type, in bytes. Throws koffi's TypeError for an unknown type, and a
 * TypeError of its own for a type object made by another copy of koffi (which this one cannot read).
 */
export function cTypeLayout(type: CType): { size: number; alignment: number } {
  if (typeof type === 'object' && type !== null && !(type instanceof (koffi.TypeObject as unknown as new () => object))) {
    throw new TypeError('the type is not a type of the koffi that ffi-heap loads (made by a second copy of koffi, perhaps ' +
      'another major version? npm ls koffi shows the copies): give a type name such as \'double\', or a type from the program\'s one koffi 3');
  }
  return { size: koffi.sizeof(type as never), alignment: koffi.alignof(type as never) };
}

/** koffi's kinds of type whose value is an address: reading one makes koffi follow it (a string) or wrap it. */
const POINTER_KINDS = new Set(['Pointer', 'String', 'String16', 'String32', 'Callback']);

interface TypeInfo {
  readonly primitive: string;
  readonly members?: Record<string, { readonly type: TypeInfo }>;
  readonly ref?: TypeInfo;
}

function pointerIn(info: TypeInfo, path: string): string | undefined {
  if (POINTER_KINDS.has(info.primitive)) return path;
  if (info.members !== undefined) {
    for (const [name, member] of Object.entries(info.members)) {
      const found = pointerIn(member.type, `${path}.${name}`);
      if (found !== undefined) return found;
    }
  }
  if (info.primitive === 'Array' && info.ref !== undefined) return pointerIn(info.ref, `${path}[]`);
  return undefined;
}

/**
 * Where C type `type` holds a pointer: '' for the type itself, a path such as '.next' or
 * '.names[]' for a member of a struct, union or array; undefined when it holds none. Throws koffi's
 * TypeError for an unknown type.
 */
export function cTypePointerPath(type: CType): string | undefined {
  return pointerIn((koffi as unknown as { type(t: unknown): TypeInfo }).type(type), '');
}

/** Writes `value` as C type `type` at `address + offset`; the caller has bounds-checked it. */
export function encodeAt(address: number, offset: number, type: CType, value: unknown): void {
  koffi.encode(address, offset, type as never, value);
}

/** Reads C type `type` at `address + offset`; the caller has bounds-checked it. */
export function decodeAt(address: number, offset: number, type: CType): unknown {
  return (koffi.decode as (ref: unknown, offset: number, type: unknown) => unknown)(address, offset, type);
}
