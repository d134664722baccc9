// C structs and arrays in the heap, described with koffi types: the heap's answer to koffi.alloc,
// with reads and writes bounds-checked against the block.

import { cTypeLayout, cTypePointerPath, decodeAt, encodeAt, type CType } from '../os/libc.js';
import type { Heap } from '../heap/heap.js';
import { checkSize } from '../heap/arguments.js';
import { hex } from '../heap/errors.js';

/** Blocks are 16-byte aligned; a type that needs more cannot live in one. */
const BLOCK_ALIGNMENT = 16;

function layout(type: CType): { size: number; alignment: number } {
  const found = cTypeLayout(type);
  if (found.alignment > BLOCK_ALIGNMENT) {
    throw new RangeError(`the type needs ${found.alignment}-byte alignment; heap blocks give ${BLOCK_ALIGNMENT}`);
  }
  return found;
}

/** Allocates room for `count` values of `type`, zeroed. Returns the address, or 0 (no memory). */
export function allocTyped(heap: Heap, type: CType, count: number, name?: string): number {
  checkSize('alloc', 'count', count);
  return heap.calloc(count, layout(type).size, name);
}

/**
 * Pointer-typed values are refused: koffi follows a pointer it decodes (a string is read from the
 * address, whatever is there) and encodes a string as a pointer to a temporary copy, so either
 * can touch memory the heap cannot check. Addresses are read and written as integers instead.
 */
function checkNoPointer(op: string, type: CType): void {
  const path = cTypePointerPath(type);
  if (path === undefined) return;
  const name = typeof type === 'string' ? `'${type}'` : 'the type';
  throw new TypeError(`${op}: ${name} holds a pointer${path === '' ? '' : ` (at ${path.slice(path.startsWith('.') ? 1 : 0)})`}, ` +
    `which koffi would follow or point at a temporary; declare it 'uintptr_t' (or 'intptr_t') to ${op} the address as a Number, ` +
    'and read what it points at with heap.readCString(address) or heap.view(address, ...) when it is a block of the heap');
}

/** The byte offset of element `index` of `type` in the block at `ptr`, checked to fit. */
function element(heap: Heap, op: string, ptr: number, type: CType, index: number): number {
  checkSize(op, 'index', index);
  checkNoPointer(op, type);
  const { size } = layout(type);
  const offset = index * size;
  const usable = heap.usableSize(ptr); // checks the address
  if (offset + size > usable) {
    throw new RangeError(`${op}(${hex(ptr)}, index ${index}): element ${index} (${size} bytes) ends past the block's ${usable} bytes`);
  }
  return offset;
}

export function encodeTyped(heap: Heap, ptr: number, type: CType, value: unknown, index: number): void {
  encodeAt(ptr, element(heap, 'encode', ptr, type, index), type, value);
}

export function decodeTyped(heap: Heap, ptr: number, type: CType, index: number): unknown {
  return decodeAt(ptr, element(heap, 'decode', ptr, type, index), type);
}
