// Allocation traces in the malloc-lab format: four header numbers (suggested heap size, number
// of ids, number of operations, weight), then one request a line:
//
//   a ID BYTES    malloc BYTES, known from now on as ID
//   r ID BYTES    realloc block ID to BYTES
//   f ID          free block ID
//
// Lines that start with # are comments, with one exception of our own: `#name "TEXT"` (a JSON
// string) names the block of the request on the next line, as malloc(size, name) would. Other
// readers of the format do not know these lines; `heap.recorded({ names: true })` writes them.
//
// Fields are separated by any whitespace; CRLF line ends and blank lines are accepted. Parsing
// checks the whole trace against itself, so a replay never meets an impossible request.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { basename } from 'node:path';

export const OP_ALLOC = 0;
export const OP_REALLOC = 1;
export const OP_FREE = 2;

/** A parsed trace, held in typed arrays: operation i is (kinds[i], ids[i], sizes[i]). */
export interface Trace {
  readonly name: string;
  readonly suggestedHeapSize: number;
  readonly idCount: number;
  readonly weight: number;
  readonly kinds: Uint8Array;
  readonly ids: Uint32Array;
  /** Bytes for alloc and realloc; 0 for free. */
  readonly sizes: Float64Array;
  /** The name given with an alloc or realloc (`#name` lines), by operation index; absent: none. */
  readonly names?: ReadonlyMap<number, string>;
}

/** A trace that cannot be read: names the file and the line. */
export class TraceError extends Error {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, what: string) {
    super(`${file}:${line}: ${what}`);
    this.name = 'TraceError';
    this.file = file;
    this.line = line;
  }
}

const MAX_REQUEST = 2 ** 40;

function wholeNumber(token: string | undefined, max: number): number {
  if (token === undefined || !/^\d+$/.test(token)) return -1;
  const n = Number(token);
  return n <= max ? n : -1;
}

/** Parses trace text; `file` names it in errors. Throws TraceError at the first fault. */
export function parseTrace(text: string, file: string): Trace {
  const lines = text.split('\n');
  /** The file's last line, for errors about its end (a final newline does not start a line). */
  const lastLine = lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
  let lineNo = 0;
  /** The next line that holds anything, split into fields, or undefined at the end. */
  const nextFields = (): string[] | undefined => {
    while (lineNo < lines.length) {
      const fields = lines[lineNo++]!.trim().split(/\s+/).filter((f) => f !== '');
      if (fields.length > 0) return fields;
    }
    return undefined;
  };

  // The header: four numbers, on one line or several.
  const header: number[] = [];
  while (header.length < 4) {
    const fields = nextFields();
    if (fields === undefined) throw new TraceError(file, lastLine, `truncated: the header needs 4 numbers, found ${header.length}`);
    for (const field of fields) {
      const n = wholeNumber(field, Number.MAX_SAFE_INTEGER);
      if (n < 0 || header.length === 4) throw new TraceError(file, lineNo, `the header must be 4 whole numbers, found '${fields.join(' ')}'`);
      header.push(n);
    }
  }
  const [suggestedHeapSize, idCount, opCount, weight] = header as [number, number, number, number];
  if (opCount > 2 ** 31) throw new TraceError(file, lineNo, `the header announces ${opCount} operations, more than a replay can hold`);

  const kinds = new Uint8Array(opCount);
  const ids = new Uint32Array(opCount);
  const sizes = new Float64Array(opCount);
  /** 0: never seen, 1: live, 2: freed. */
  const state = new Uint8Array(idCount);
  let count = 0;
  const names = new Map<number, string>();
  let name: string | undefined;
  let nameLine = 0;
  for (let fields = nextFields(); fields !== undefined; fields = nextFields()) {
    const [op, idText, sizeText] = fields;
    const where = lineNo;
    if (op!.startsWith('#')) {
      if (op !== '#name') continue;
      const text = lines[lineNo - 1]!.trim().slice('#name'.length).trim();
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      if (typeof value !== 'string') throw new TraceError(file, where, `#name needs a JSON string, found '${text}'`);
      name = value;
      nameLine = where;
      continue;
    }
    if (count === opCount) throw new TraceError(file, where, `more operations than the ${opCount} the header announces`);
    const kind = op === 'a' ? OP_ALLOC : op === 'r' ? OP_REALLOC : op === 'f' ? OP_FREE : -1;
    if (kind < 0) throw new TraceError(file, where, `unknown operation '${op}' (expected a, r or f)`);
    const expected = kind === OP_FREE ? 2 : 3;
    if (fields.length !== expected) {
      throw new TraceError(file, where, fields.length < expected
        ? `'${op}' needs ${kind === OP_FREE ? 'an id' : 'an id and a size'}: '${fields.join(' ')}'`
        : `too many fields: '${fields.join(' ')}'`);
    }
    const id = wholeNumber(idText, Number.MAX_SAFE_INTEGER);
    if (id < 0) throw new TraceError(file, where, `the id must be a whole number, found '${idText}'`);
    if (id >= idCount) throw new TraceError(file, where, `unknown id ${id}: the header declares ids 0 to ${idCount - 1}`);
    let size = 0;
    if (kind !== OP_FREE) {
      size = wholeNumber(sizeText, MAX_REQUEST);
      if (size < 0) throw new TraceError(file, where, `the size must be a whole number up to 2^40, found '${sizeText}'`);
    }
    const s = state[id]!;
    if (kind === OP_ALLOC && s === 1) throw new TraceError(file, where, `id ${id} is allocated again while still live`);
    if (kind !== OP_ALLOC && s !== 1) {
      throw new TraceError(file, where, s === 0
        ? `unknown id ${id}: it was never allocated`
        : `id ${id} was already freed`);
    }
    state[id] = kind === OP_FREE ? 2 : 1;
    if (name !== undefined) {
      if (kind === OP_FREE) throw new TraceError(file, nameLine, '#name names a free; it goes before an a or r line');
      names.set(count, name);
      name = undefined;
    }
    kinds[count] = kind;
    ids[count] = id;
    sizes[count] = size;
    count++;
  }
  if (count < opCount) throw new TraceError(file, lastLine, `truncated: the header announces ${opCount} operations, the file holds ${count}`);
  if (name !== undefined) throw new TraceError(file, nameLine, '#name with no request after it');
  const traceName = basename(file).replace(/\.gz$/, '').replace(/\.rep$/, '');
  return { name: traceName, suggestedHeapSize, idCount, weight, kinds, ids, sizes, ...(names.size > 0 ? { names } : {}) };
}

/** Reads and parses a trace file; `.gz` files are decompressed first. */
export function readTrace(path: string): Trace {
  let data: Buffer;
  try {
    data = readFileSync(path);
    if (path.endsWith('.gz')) data = gunzipSync(data);
  } catch (error) {
    throw new TraceError(path, 0, `cannot read: ${(error as Error).message}`);
  }
  return parseTrace(data.toString('utf8'), path);
}

/** Writes a trace in the same format (what gen-trace prints), with its `#name` lines if it has names. */
export function formatTrace(trace: Trace): string {
  const out: string[] = [`${trace.suggestedHeapSize}`, `${trace.idCount}`, `${trace.kinds.length}`, `${trace.weight}`];
  for (let i = 0; i < trace.kinds.length; i++) {
    const kind = trace.kinds[i];
    const name = trace.names?.get(i);
    if (name !== undefined) out.push(`#name ${JSON.stringify(name)}`);
    out.push(kind === OP_FREE ? `f ${trace.ids[i]}` : `${kind === OP_ALLOC ? 'a' : 'r'} ${trace.ids[i]} ${trace.sizes[i]}`);
  }
  return out.join('\n') + '\n';
}

/** The peak of live requested bytes over the trace, and the operation right after which it is reached. */
export function peakPayload(trace: Trace): { bytes: number; at: number } {
  const live = new Float64Array(trace.idCount);
  let current = 0;
  let peak = 0;
  let at = -1;
  for (let i = 0; i < trace.kinds.length; i++) {
    const id = trace.ids[i]!;
    current -= live[id]!;
    live[id] = trace.kinds[i] === OP_FREE ? 0 : trace.sizes[i]!;
    current += live[id]!;
    if (current > peak) {
      peak = current;
      at = i;
    }
  }
  return { bytes: peak, at };
}
