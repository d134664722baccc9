// Mappings: page-aligned ranges of anonymous memory from the kernel, each with one ArrayBuffer
// over it. The heap reads and writes native memory only through these buffers, so an address
// outside every live mapping can never be dereferenced by accident.

import { libc, nativeView } from './libc.js';

/** koffi (and V8 on Node 20) cannot make one view larger than this. */
export const MAX_VIEW_BYTES = 2 ** 32;

/** The largest address a user-space pointer can hold on the platforms we support. */
export const MAX_ADDRESS = 2 ** 47;

let pageSize = 0;

/** The kernel's page size, asked once. */
export function getPageSize(): number {
  if (pageSize === 0) {
    const lib = libc();
    const size = lib.sysconf(lib.constants.SC_PAGESIZE);
    pageSize = size > 0 ? size : 4096;
  }
  return pageSize;
}

/** Rounds `n` up to a whole number of pages. */
export function alignPage(n: number): number {
  const page = getPageSize();
  return Math.ceil(n / page) * page;
}

/** One range of memory from mmap, with the only buffer that may alias it. */
export interface Mapping {
  readonly address: number;
  readonly size: number;
  /** Over the whole range; detached (length 0) once unmapped, where the runtime allows. */
  buffer: ArrayBuffer;
  mapped: boolean;
}

/**
 * Maps `size` bytes (a whole number of pages, at most MAX_VIEW_BYTES) of zeroed read-write
 * memory. Returns null when the kernel refuses: running out of memory is not an exception here.
 */
export function mapMemory(size: number): Mapping | null {
  if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_VIEW_BYTES || size % getPageSize() !== 0) {
    throw new RangeError(`mapMemory: size must be a positive multiple of the page size up to 4 GiB, got ${size}`);
  }
  const lib = libc();
  const c = lib.constants;
  const address = lib.mmap(0, size, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0);
  // MAP_FAILED is (void *)-1; 0 is not a failure code but would make a view that aborts the process.
  if (address === -1 || address <= 0 || address >= MAX_ADDRESS) return null;
  return { address, size, buffer: nativeView(address, size), mapped: true };
}

const canDetach = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

/** True where the runtime can detach a native view, so stale typed arrays read as empty. */
export const DETACHES_VIEWS = canDetach;

/**
 * Returns a mapping to the kernel. Where the runtime has ArrayBuffer.prototype.transfer (Node 22+,
 * Bun) the buffer is detached first, so any typed array still over it has length 0 instead of
 * pointing at unmapped memory. On Node 20 stale typed arrays cannot be detached; the heap keeps
 * them from being handed out, but a caller that kept one must not read it.
 */
export function unmapMemory(mapping: Mapping): void {
  if (!mapping.mapped) return;
  mapping.mapped = false;
  if (canDetach) {
    (mapping.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  }
  mapping.buffer = new ArrayBuffer(0);
  const rc = libc().munmap(mapping.address, mapping.size);
  if (rc !== 0) {
    // munmap fails only for arguments that mmap gave us, which would be a bug of ours.
    throw new Error(`munmap(0x${mapping.address.toString(16)}, ${mapping.size}) failed, errno ${libc().errno()}`);
  }
}

/** Copies `n` bytes between two validated native ranges (they may not overlap). */
export function copyNative(dst: number, src: number, n: number): void {
  if (n > 0) libc().memcpy(dst, src, n);
}

/** Fills `n` bytes of a validated native range with `byte`. */
export function fillNative(dst: number, byte: number, n: number): void {
  if (n > 0) libc().memset(dst, byte, n);
}
