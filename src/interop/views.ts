// Typed views over a block, and C strings: what koffi bindings pass to and read from C.

import type { Heap } from '../heap/heap.js';
import { checkName, checkSize, toAddress } from '../heap/arguments.js';
import type { Address } from '../heap/types.js';
import { hex } from '../heap/errors.js';

/** Every typed-array constructor a view can be made with. */
export type TypedArrayConstructor =
  | Int8ArrayConstructor | Uint8ArrayConstructor | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor | BigInt64ArrayConstructor | BigUint64ArrayConstructor;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `count` elements of `type` from `ptr`, any address inside a live block (as many as fit by default). */
export function typedView<T extends TypedArrayConstructor>(heap: Heap, ptr: Address, type: T, count?: number): InstanceType<T> {
  const element = type?.BYTES_PER_ELEMENT;
  if (typeof element !== 'number') throw new TypeError('view: the type must be a typed-array constructor, such as Float64Array');
  if (count !== undefined) checkSize('view', 'count', count);
  const bytes = heap.span('view', ptr, count === undefined ? undefined : count * element); // checks the address and the bounds
  if (bytes.byteOffset % element !== 0) {
    throw new RangeError(`view(${hex(toAddress('view', ptr))}, ${type.name}): the address is not a multiple of ${element}, as a ${type.name} needs`);
  }
  const n = count ?? Math.floor(bytes.length / element);
  return new type(bytes.buffer as ArrayBuffer, bytes.byteOffset, n) as InstanceType<T>;
}

/** Writes `text` as UTF-8 plus a NUL into a new block. */
export function writeCString(heap: Heap, text: string, name?: string): number {
  if (typeof text !== 'string') throw new TypeError(`cstring: expected a string, got ${typeof text}`);
  checkName('cstring', name);
  const encoded = encoder.encode(text);
  if (encoded.includes(0)) throw new RangeError('cstring: the text holds a NUL character, which would end it early in C');
  const ptr = heap.malloc(encoded.length + 1, name);
  if (ptr === 0) return 0;
  const bytes = heap.span('cstring', ptr, encoded.length + 1);
  bytes.set(encoded);
  bytes[encoded.length] = 0;
  return ptr;
}

/** Reads the NUL-terminated UTF-8 string at `ptr`, any address inside a live block. */
export function readCString(heap: Heap, ptr: Address): string {
  const bytes = heap.span('readCString', ptr);
  const end = bytes.indexOf(0);
  if (end < 0) throw new RangeError(`readCString(${hex(toAddress('readCString', ptr))}): no NUL within the block's ${bytes.length} bytes from there`);
  return decoder.decode(bytes.subarray(0, end));
}
