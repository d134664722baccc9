// C structs and arrays in the heap, described with koffi types: the heap's answer to koffi.alloc,
// with reads and writes bounds-checked against the block.

import { cTypeLayout, cTypePointerPath, decodeAt, encodeAt, type CType } from '../os/libc.js';
import type { Heap } from '../heap/heap.js';
import { checkName, checkSize, toAddress } from '../heap/arguments.js';
import type { Address } from '../heap/types.js';
import { hex } from '../heap/errors.js';

/** Blocks are 16-byte aligned; a type that needs more cannot live in one. */
const BLOCK_ALIGNMENT = 16;

function layout(op: string, type: CType): { size: number; alignment: number } {
  let found;
  try {
    found = cTypeLayout(type);
  } catch (error) {
    // koffi's own message names no call of ours: the caller's comes first.
    if (error instanceof TypeError) throw new TypeError(`${op}: ${error.message}`);
    throw error;
  }
  if (found.alignment > BLOCK_ALIGNMENT) {
    throw new RangeError(`${op}: the type needs ${found.alignment}-byte alignment; heap blocks give ${BLOCK_ALIGNMENT}`);
  }
  return found;
}

/** Allocates room for `count` values of `type`, zeroed. Returns the address, or 0 (no memory). */
export function allocTyped(heap: Heap, type: CType, count: number, name?: string): number {
  checkSize('alloc', 'count', count);
  checkName('alloc', name);
  return heap.calloc(count, layout('alloc', type).size, name);
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

/** The byte offset of element `index` of `type` from address `ptr` (inside a live block), checked to fit. */
function element(heap: Heap, op: string, ptr: number, type: CType, index: number): number {
  checkSize(op, 'index', index);
  const { size } = layout(op, type);
  checkNoPointer(op, type);
  const offset = index * size;
  const room = heap.span(op, ptr).length; // checks the address
  if (offset + size > room) {
    throw new RangeError(`${op}(${hex(ptr)}, index ${index}): element ${index} (${size} bytes) ends past the block's ${room} bytes from there`);
  }
  return offset;
}

export function encodeTyped(heap: Heap, ptr: Address, type: CType, value: unknown, index: number): void {
  const p = toAddress('encode', ptr);
  encodeAt(p, element(heap, 'encode', p, type, index), type, value);
}

export function decodeTyped(heap: Heap, ptr: Address, type: CType, index: number): unknown {
  const p = toAddress('decode', ptr);
  return decodeAt(p, element(heap, 'decode', p, type, index), type);
}
