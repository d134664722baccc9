// The errors the heap throws. Misuse of an address is a HeapError with a stable `code`; an argument
// of the wrong kind is a TypeError or RangeError, as in the rest of JavaScript.

/** Stable codes carried by every HeapError. */
export type HeapErrorCode =
  /** The address is not the start of a live block of this heap (foreign, interior, misaligned). */
  | 'ERR_INVALID_POINTER'
  /** The address is the start of a block that is already free. */
  | 'ERR_DOUBLE_FREE'
  /** A header or link failed its checks: something wrote over the heap's metadata. */
  | 'ERR_HEAP_CORRUPTED'
  /** No memory could be had, and the heap was asked to throw rather than return 0. */
  | 'ERR_OUT_OF_MEMORY'
  /** The heap was destroyed; it owns no memory and takes no more calls. */
  | 'ERR_HEAP_DESTROYED'
  /** A scope or arena has ended (disposed, or its withScope body finished); it takes no more calls. */
  | 'ERR_SCOPE_ENDED';

/**
 * What the heap throws for a misused address, damaged metadata, a destroyed heap, or (when asked)
 * running out of memory. Nothing has changed in the heap when it is thrown.
 */
export class HeapError extends Error {
  /** Which of the failures above it is; stable across releases. */
  readonly code: HeapErrorCode;
  /** The address the error is about, when there is one. */
  readonly address: number | undefined;

  constructor(code: HeapErrorCode, message: string, address?: number) {
    super(message);
    this.name = 'HeapError';
    this.code = code;
    this.address = address;
  }
}

/** Formats an address the way print_memory does: lower-case hex with a 0x prefix. */
export function hex(address: number): string {
  return '0x' + address.toString(16);
}

export function destroyedError(): HeapError {
  return new HeapError('ERR_HEAP_DESTROYED', 'this heap was destroyed; it takes no more calls');
}
