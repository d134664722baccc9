// `ffi-heap view [--allocator NAME]... [--algorithm FIT]... [--out FILE.html | --serve] TRACE`:
// the interactive viewer of a trace (../viewer/), written as one self-contained page, or served.

import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { FIT_ALGORITHMS, type FitAlgorithm } from '../strategies/fit.js';
import { readTrace } from '../trace/format.js';
import { viewPage } from '../viewer/html.js';
import { recordHeap, type ViewAllocator } from '../viewer/record.js';

export const VIEW_USAGE = `usage: ffi-heap view [--allocator NAME]... [--algorithm FIT]... [--out FILE.html | --serve [--port N]] TRACE

Replays a trace (malloc-lab format, .gz read directly; \`new Heap({ record: true })\` makes one of a
program's own calls) against real heaps and writes one self-contained HTML page that shows the heap
at any operation: a timeline of live payload and footprint, the heap map, the operation described,
the free list, and for the classic preset print_memory. Up to three heaps side by side.

  --allocator NAME  fast or classic (repeatable; default fast, or classic when --algorithm is given)
  --algorithm FIT   ${FIT_ALGORITHMS.join(', ')}: a classic heap for each (repeatable)
  --out FILE        where to write the page (default: the trace's name with .html, here)
  --serve           serve the page on 127.0.0.1 instead (opens nothing; Ctrl-C stops it)
  --port N          the port for --serve (default: any free one)
`;

class UsageError extends Error {}

/** The heaps to show, from the options. */
function allocators(names: readonly string[], fits: readonly string[]): ViewAllocator[] {
  for (const fit of fits) {
    if (!(FIT_ALGORITHMS as readonly string[]).includes(fit)) throw new UsageError(`--algorithm must be one of ${FIT_ALGORITHMS.join(', ')}, got '${fit}'`);
  }
  const algorithms = fits.length > 0 ? (fits as FitAlgorithm[]) : ['first_fit' as const];
  const list: ViewAllocator[] = [];
  for (const name of names.length > 0 ? names : [fits.length > 0 ? 'classic' : 'fast']) {
    if (name === 'fast') list.push({ preset: 'fast' });
    else if (name === 'classic') for (const algorithm of algorithms) list.push({ preset: 'classic', algorithm });
    else throw new UsageError(`--allocator must be fast or classic, got '${name}'`);
  }
  if (list.length > 3) throw new UsageError(`at most three heaps side by side, got ${list.length}`);
  return list;
}

export async function viewCommand(argv: readonly string[], out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      allocator: { type: 'string', multiple: true },
      algorithm: { type: 'string', multiple: true },
      out: { type: 'string' },
      serve: { type: 'boolean' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(VIEW_USAGE);
    return 0;
  }
  let heaps: ViewAllocator[];
  let port = 0;
  try {
    if (positionals.length !== 1) throw new UsageError('give one trace file');
    if (values.serve && values.out !== undefined) throw new UsageError('--out and --serve: choose one');
    if (values.port !== undefined) {
      if (!values.serve) throw new UsageError('--port goes with --serve');
      port = Number(values.port);
      if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number from 0 to 65535, got '${values.port}'`);
    }
    heaps = allocators(values.allocator ?? [], values.algorithm ?? []);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`ffi-heap view: ${error.message}\n(ffi-heap view --help lists the options)\n`);
    return 2;
  }
  const trace = readTrace(positionals[0]!);
  const records = heaps.map((a) => recordHeap(trace, a));
  const page = viewPage(trace, records);
  const size = `${(Buffer.byteLength(page) / 1024).toFixed(0)} KiB`;
  const about = `${trace.kinds.length} operations, ${records.map((r) => r.label).join(' | ')}`;
  if (!values.serve) {
    const file = values.out ?? `${basename(trace.name)}.html`;
    writeFileSync(file, page);
    out(`wrote ${file} (${size}): ${about}\n`);
    return 0;
  }
  const server = createServer((request, response) => {
    if (request.url !== '/' && request.url !== '/index.html') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  out(`serving http://127.0.0.1:${bound}/ (${size}): ${about}; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
