// Mappings: page-aligned ranges of anonymous memory from the kernel, each with one ArrayBuffer
// over it. The heap reads and writes native memory only through these buffers, so an address
// outside every live mapping can never be dereferenced by accident.

import { readFileSync } from 'node:fs';
import { libc, nativeView } from './libc.js';

/** koffi (and V8 on Node 20) cannot make one view larger than this. */
export const MAX_VIEW_BYTES = 2 ** 32;

/** The largest address a user-space pointer can hold on the platforms we support. */
export const MAX_ADDRESS = 2 ** 47;

/**
 * Copies of at least this many bytes between two mappings go through libc's memcpy (one FFI call,
 * no view made); smaller ones through typed-array views. Copies within one view (the fast preset's
 * medium arena) use copyWithin at every size. Measured by `npm run bench:copy`.
 */
export const NATIVE_COPY_MIN = 1024;

/** Copies `n` bytes from native address `from` to `to` with libc's memcpy: ranges that do not overlap, both mapped read-write. */
export function copyMemory(to: number, from: number, n: number): void {
  libc().memcpy(to, from, n);
}

/** Sets `n` bytes at native address `to` to `byte` with libc's memset: a range mapped read-write. */
export function fillMemory(to: number, byte: number, n: number): void {
  if (n > 0) libc().memset(to, byte, n);
}

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
  /**
   * Over the whole range, or empty for a mapping made without a view until viewMapping makes one;
   * detached (length 0) once unmapped, where the runtime allows.
   */
  buffer: ArrayBuffer;
  mapped: boolean;
}

/**
 * Maps `size` bytes (a whole number of pages, at most MAX_VIEW_BYTES) of zeroed read-write
 * memory. Returns null when the kernel refuses: running out of memory is not an exception here.
 * With `view` false its buffer is empty until viewMapping makes the view.
 */
export function mapMemory(size: number, view = true): Mapping | null {
  if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_VIEW_BYTES || size % getPageSize() !== 0) {
    throw new RangeError(`mapMemory: size must be a positive multiple of the page size up to 4 GiB, got ${size}`);
  }
  const lib = libc();
  const c = lib.constants;
  const address = lib.mmap(0, size, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0);
  // MAP_FAILED is (void *)-1; 0 is not a failure code but would make a view that aborts the process.
  if (address === -1 || address <= 0 || address >= MAX_ADDRESS) return null;
  return { address, size, buffer: view ? nativeView(address, size) : new ArrayBuffer(0), mapped: true };
}

/**
 * The view over a mapping made without one (`view` false), made now; the mapping's buffer after.
 * A view of a large range costs far more than the mmap call: V8 counts it as external memory, and
 * koffi.view of 200 MB took 0.2 to 2.7 ms here (the mmap, 3 to 50 µs).
 */
export function viewMapping(mapping: Mapping): ArrayBuffer {
  if (mapping.mapped && mapping.buffer.byteLength === 0) mapping.buffer = nativeView(mapping.address, mapping.size);
  return mapping.buffer;
}

const canDetach = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

/**
 * Returns a mapping to the kernel. Where the runtime has ArrayBuffer.prototype.transfer (Node 22+,
 * Bun) the buffer is detached first, so any typed array still over it has length 0 instead of
 * pointing at unmapped memory. On Node 20 stale typed arrays cannot be detached; the heap keeps
 * them from being handed out, but a caller that kept one must not read it.
 */
export function unmapMemory(mapping: Mapping): void {
  if (!mapping.mapped) return;
  mapping.mapped = false;
  // A buffer shared with another part of a split reservation may be detached already.
  if (canDetach && mapping.buffer.byteLength !== 0) {
    (mapping.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  }
  mapping.buffer = new ArrayBuffer(0);
  const rc = libc().munmap(mapping.address, mapping.size);
  if (rc !== 0) {
    // munmap fails only for arguments that mmap gave us, which would be a bug of ours.
    throw new Error(`munmap(0x${mapping.address.toString(16)}, ${mapping.size}) failed, errno ${libc().errno()}`);
  }
}

/**
 * A reserved range of address space: inaccessible (PROT_NONE) until parts of it are committed.
 * One ArrayBuffer spans all of it, so an address inside is `address + offset` and a header is one
 * typed-array read away. Only committed parts may be read: the owner tracks which those are.
 */
export interface Reservation {
  readonly address: number;
  readonly size: number;
  buffer: ArrayBuffer;
  mapped: boolean;
}

/**
 * Reserves `size` bytes of address space (a multiple of 64 KiB, at most MAX_VIEW_BYTES), trying
 * halves of it down to `minimum` when the kernel refuses (a small `ulimit -v`, say). Null if even
 * the minimum cannot be had. Reserved memory costs neither RAM nor swap until committed.
 */
export function reserveAddressSpace(size: number, minimum: number): Reservation | null {
  const lib = libc();
  const c = lib.constants;
  for (let want = size; want >= minimum; want /= 2) {
    const address = lib.mmap(0, want, c.PROT_NONE, c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_NORESERVE, -1, 0);
    if (address !== -1 && address > 0 && address < MAX_ADDRESS) {
      return { address, size: want, buffer: nativeView(address, want), mapped: true };
    }
  }
  return null;
}

/** Makes `length` bytes at `offset` inside a reservation readable and writable (zeroed). */
export function commit(reservation: Reservation, offset: number, length: number): boolean {
  checkInside(reservation, offset, length);
  const lib = libc();
  const c = lib.constants;
  const at = reservation.address + offset;
  const got = lib.mmap(at, length, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED, -1, 0);
  return got === at;
}

/**
 * Reserves `length` bytes of address space (whole pages, inaccessible, costing no memory) and
 * returns its address, with no view over it; 0 when the kernel refuses. commitRange makes parts
 * of it usable.
 */
export function reserveRange(length: number): number {
  if (!Number.isSafeInteger(length) || length <= 0 || length % getPageSize() !== 0) {
    throw new RangeError(`reserveRange: ${length} bytes is not a whole number of pages`);
  }
  const lib = libc();
  const c = lib.constants;
  const address = lib.mmap(0, length, c.PROT_NONE, c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_NORESERVE, -1, 0);
  return address === -1 || address <= 0 || address + length > MAX_ADDRESS ? 0 : address;
}

/**
 * Makes `length` bytes at `address` (whole pages of a range this process mapped, which the caller
 * vouches for) readable, writable and zeroed, in place. False when the kernel refuses.
 */
export function commitRange(address: number, length: number): boolean {
  checkRange(address, length);
  const lib = libc();
  const c = lib.constants;
  return lib.mmap(address, length, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED, -1, 0) === address;
}

/**
 * Gives the pages of `length` bytes at `address` (whole pages of a range this process mapped)
 * back to the kernel as decommit does inside a reservation: read-only zero pages stay mapped.
 */
export function decommitRange(address: number, length: number): void {
  checkRange(address, length);
  const lib = libc();
  const c = lib.constants;
  const got = lib.mmap(address, length, c.PROT_READ, c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED | c.MAP_NORESERVE, -1, 0);
  if (got !== address) throw new Error(`decommit of ${length} bytes at 0x${address.toString(16)} failed, errno ${lib.errno()}`);
}

/**
 * Grows the mapping of `oldLength` bytes at `address` to `newLength` where it lies, when the
 * address space after it is free (mremap without MREMAP_MAYMOVE: it never moves, so every view
 * over it stays good). False where it cannot, or the platform has no mremap.
 */
export function growInPlace(address: number, oldLength: number, newLength: number): boolean {
  checkRange(address, newLength);
  const { mremap } = libc();
  return mremap !== undefined && newLength > oldLength && mremap(address, oldLength, newLength, 0) === address;
}

/** Unmaps `length` bytes at `address` (whole pages this process mapped, no view of ours over them kept). */
export function unmapRange(address: number, length: number): void {
  checkRange(address, length);
  if (libc().munmap(address, length) !== 0) {
    throw new Error(`munmap(0x${address.toString(16)}, ${length}) failed, errno ${libc().errno()}`);
  }
}

/** A view of `length` bytes at `address`, mapped read-write (the caller vouches for it), at most MAX_VIEW_BYTES. */
export function viewRange(address: number, length: number): ArrayBuffer {
  checkRange(address, length);
  if (length > MAX_VIEW_BYTES) throw new RangeError(`viewRange: ${length} bytes is more than one view can hold`);
  return nativeView(address, length);
}

function checkRange(address: number, length: number): void {
  const page = getPageSize();
  if (!Number.isSafeInteger(address) || address <= 0 || address % page !== 0 || !Number.isSafeInteger(length) ||
      length <= 0 || length % page !== 0 || address + length > MAX_ADDRESS) {
    throw new RangeError(`${length} bytes at 0x${address.toString(16)} is not a range of whole pages`);
  }
}

/**
 * Gives the pages of a committed range back to the kernel, keeping the address range reserved:
 * fresh anonymous pages are mapped over it read-only, which cost no memory (every one is the
 * kernel's shared zero page). A typed array someone kept over the range then reads zeros instead
 * of killing the process; a write through it still faults.
 */
export function decommit(reservation: Reservation, offset: number, length: number): void {
  checkInside(reservation, offset, length);
  const lib = libc();
  const c = lib.constants;
  const at = reservation.address + offset;
  const got = lib.mmap(at, length, c.PROT_READ,
    c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED | c.MAP_NORESERVE, -1, 0);
  if (got !== at) throw new Error(`decommit of ${length} bytes at 0x${at.toString(16)} failed, errno ${lib.errno()}`);
}

/**
 * Gives the memory of a committed range inside a reservation back to the kernel, the range staying
 * mapped read-write: on Linux it reads as zeros when next touched and costs nothing until then, so
 * using it again needs no system call. (On macOS the kernel takes the pages when it needs them.)
 */
export function discard(reservation: Reservation, offset: number, length: number): void {
  checkInside(reservation, offset, length);
  const lib = libc();
  if (lib.madvise(reservation.address + offset, length, lib.constants.MADV_GIVE_BACK) !== 0) {
    throw new Error(`madvise of ${length} bytes at offset ${offset} failed, errno ${lib.errno()}`);
  }
}

/**
 * Whether every page of [address, address + size) is mapped in this process, whatever its
 * protection: one mincore call, so a range taken from untrusted data is proved before a view is
 * made over it (a view over unmapped memory kills the process at its first read).
 */
export function isMapped(address: number, size: number): boolean {
  const page = getPageSize();
  if (!Number.isSafeInteger(address) || address <= 0 || address % page !== 0 || address + size > MAX_ADDRESS ||
      !Number.isSafeInteger(size) || size <= 0 || size % page !== 0) return false;
  return libc().mincore(address, size, new Uint8Array(size / page)) === 0;
}

/**
 * Whether every byte of [address, address + length) is readable and writable in this process, by
 * the kernel's list of mappings (/proc/self/maps); a view's reads and writes there cannot fault.
 * Where there is no such list (macOS), true: isMapped is then the only check.
 */
export function isReadWrite(address: number, length: number): boolean {
  if (length <= 0) return true;
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'latin1');
  } catch {
    return process.platform !== 'linux';
  }
  // Lines are sorted by address: walk them while they cover the range without a gap.
  let at = address;
  const end = address + length;
  for (const line of maps.split('\n')) {
    const dash = line.indexOf('-');
    const space = line.indexOf(' ');
    if (dash < 0 || space < dash) continue;
    const from = parseInt(line.slice(0, dash), 16);
    const to = parseInt(line.slice(dash + 1, space), 16);
    if (to <= at) continue;
    if (from > at || line[space + 1] !== 'r' || line[space + 2] !== 'w') return false;
    at = to;
    if (at >= end) return true;
  }
  return false;
}

/**
 * A view of this thread's own over a range another thread reserved (the arena of a shared heap).
 * The caller vouches for the range: it comes from the control block its creator wrote.
 */
export function adoptReservation(address: number, size: number): Reservation {
  if (!Number.isSafeInteger(address) || address <= 0 || address >= MAX_ADDRESS || !Number.isSafeInteger(size) ||
      size <= 0 || size > MAX_VIEW_BYTES || size % getPageSize() !== 0 || address % getPageSize() !== 0) {
    throw new RangeError(`adoptReservation: ${size} bytes at ${address} is not a reserved range`);
  }
  return { address, size, buffer: nativeView(address, size), mapped: true };
}

/**
 * The two parts of reservation `whole`, split `at` bytes (whole pages) from its start, each to be
 * released on its own. Both keep `whole`'s buffer (one view over all of it: the second part's
 * bytes start `at` bytes into it), which the first release detaches.
 */
export function splitReservation(whole: Reservation, at: number): [Reservation, Reservation] {
  checkInside(whole, 0, at);
  return [
    { address: whole.address, size: at, buffer: whole.buffer, mapped: true },
    { address: whole.address + at, size: whole.size - at, buffer: whole.buffer, mapped: true },
  ];
}

/** Returns a whole reservation to the kernel, detaching its buffer where the runtime can. */
export function releaseReservation(reservation: Reservation): void {
  unmapMemory(reservation);
}

function checkInside(reservation: Reservation, offset: number, length: number): void {
  const page = getPageSize();
  if (!reservation.mapped || offset < 0 || length <= 0 || offset + length > reservation.size ||
      offset % page !== 0 || length % page !== 0) {
    throw new RangeError(`range ${offset}+${length} is not whole pages inside the reservation`);
  }
}

/**
 * A Uint8Array over `length` bytes at `address`, which another allocator (C's malloc, say) handed
 * out and the caller vouches for. Never pass an address that is not live memory.
 */
export function foreignBytes(address: number, length: number): Uint8Array {
  if (address <= 0 || length < 0 || length > MAX_VIEW_BYTES) {
    throw new RangeError(`foreignBytes(0x${address.toString(16)}, ${length}): not a viewable range`);
  }
  return length === 0 ? new Uint8Array(0) : new Uint8Array(nativeView(address, length));
}

const MREMAP_MAYMOVE = 1;

/**
 * Resizes a mapping to `size` bytes (whole pages, at most MAX_VIEW_BYTES), letting the kernel move
 * it without copying. Returns the new mapping (the old one is then gone, its buffer detached where
 * the runtime can), or null where the platform has no mremap or the kernel refuses; the old
 * mapping is untouched then.
 */
export function remapMemory(mapping: Mapping, size: number, view = true): Mapping | null {
  const { mremap } = libc();
  if (mremap === undefined || !mapping.mapped || size <= 0 || size > MAX_VIEW_BYTES || size % getPageSize() !== 0) return null;
  const address = mremap(mapping.address, mapping.size, size, MREMAP_MAYMOVE);
  if (address === -1 || address <= 0 || address >= MAX_ADDRESS) return null;
  mapping.mapped = false;
  if (canDetach) (mapping.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  mapping.buffer = new ArrayBuffer(0);
  return { address, size, buffer: view ? nativeView(address, size) : new ArrayBuffer(0), mapped: true };
}
