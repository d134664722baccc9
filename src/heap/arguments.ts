// Checks on the kinds of public arguments, shared by every preset. They are tiny so that they
// inline into the hot paths; the errors are built out of line.

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

function sizeError(op: string, what: string, value: unknown): Error {
  if (typeof value !== 'number') return new TypeError(`${op}: ${what} must be a number, got ${describe(value)}`);
  return new RangeError(`${op}: ${what} must be a non-negative safe integer, got ${describe(value)}`);
}

function addressError(op: string, value: unknown): Error {
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    return new TypeError(`${op}: the address must be a number or a BigInt, got ${describe(value)}`);
  }
  return new RangeError(`${op}: the address must be a non-negative safe integer, got ${describe(value)}`);
}

const MAX_ADDRESS = BigInt(Number.MAX_SAFE_INTEGER);

/** A size or count: a non-negative safe integer. The first test settles the common case. */
export function checkSize(op: string, what: string, value: number): void {
  if (typeof value !== 'number' || ((value >>> 0) !== value && !(Number.isSafeInteger(value) && value >= 0))) {
    throw sizeError(op, what, value);
  }
}

/** An address: a non-negative safe integer (0, NULL, included). */
export function checkAddress(op: string, value: number): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= Number.MAX_SAFE_INTEGER) || Math.floor(value) !== value) {
    throw addressError(op, value);
  }
}

/**
 * An address given as a Number or a BigInt (koffi 3 returns `void *` as a BigInt), as a Number:
 * a BigInt converts exactly or not at all (it must be a non-negative safe integer).
 */
export function toAddress(op: string, value: number | bigint): number {
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_ADDRESS) throw addressError(op, value);
    return Number(value);
  }
  checkAddress(op, value);
  return value;
}

/** A block name: a string, or absent. */
export function checkName(op: string, value: string | undefined): void {
  if (value !== undefined && typeof value !== 'string') {
    throw new TypeError(`${op}: the name must be a string, got ${describe(value)}`);
  }
}

/** calloc's `count * size`, or -1 when it is beyond any possible allocation. */
export function callocBytes(count: number, size: number): number {
  checkSize('calloc', 'count', count);
  checkSize('calloc', 'size', size);
  const total = count * size;
  return total > Number.MAX_SAFE_INTEGER ? -1 : total;
}

/** realloc's three arguments, in the order a reader expects them checked; returns the address as a Number. */
export function checkRealloc(ptr: number | bigint, size: number, name: string | undefined): number {
  const address = toAddress('realloc', ptr);
  checkSize('realloc', 'size', size);
  checkName('realloc', name);
  return address;
}
