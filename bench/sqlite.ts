// npm run bench:sqlite: a SQLite workload (create, insert 100,000 rows, index, query) timed with
// SQLite's own allocator and with ffi-heap as its allocator, each in a fresh process (SQLite's
// allocator is set once per process), median of five runs each.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import koffi, { type LibraryHandle } from 'koffi';
import { Heap } from '../src/index.js';
import { installSqliteAllocator } from '../src/interop/sqlite.js';
import { runtimeName } from './runtime.js';

const ROWS = 100_000;
const RUNS = 5;

function workload(library: LibraryHandle): number {
  const open = library.func('int sqlite3_open(const char *filename, _Out_ void **db)');
  const exec = library.func('int sqlite3_exec(void *db, const char *sql, void *callback, void *arg, void *errmsg)');
  const close = library.func('int sqlite3_close(void *db)');
  const started = performance.now();
  const db = [null];
  open(':memory:', db);
  const statements = [
    'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL)',
    `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ${ROWS}) INSERT INTO t(name, value) SELECT printf('name-%06d', x), x * 0.5 FROM n`,
    'CREATE INDEX t_name ON t(name)',
    "SELECT count(*), sum(value) FROM t WHERE name LIKE 'name-01%'",
    'SELECT name FROM t ORDER BY value DESC LIMIT 100',
  ];
  for (const sql of statements) {
    if (exec(db[0], sql, null, null, null) !== 0) throw new Error(`SQLite refused: ${sql}`);
  }
  close(db[0]);
  return performance.now() - started;
}

const role = process.argv[2];
if (role === 'sqlite' || role === 'ffi-heap') {
  const library = koffi.load('libsqlite3.so.0', { deep: true });
  if (role === 'ffi-heap') installSqliteAllocator(new Heap(), library);
  workload(library); // warm-up
  process.stdout.write(String(workload(library)));
} else {
  const self = fileURLToPath(import.meta.url);
  const median = (name: string): number => {
    const times = Array.from({ length: RUNS }, () => {
      const run = spawnSync(process.execPath, [self, name], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(run.stderr);
      return Number(run.stdout);
    }).sort((a, b) => a - b);
    return times[RUNS >> 1]!;
  };
  const own = median('sqlite');
  const heap = median('ffi-heap');
  console.log(`SQLite workload (${ROWS.toLocaleString('en')} rows, index, queries), ${runtimeName(true)}, median of ${RUNS} processes:`);
  console.log(`  SQLite's own allocator: ${own.toFixed(1)} ms`);
  console.log(`  ffi-heap as allocator:  ${heap.toFixed(1)} ms  (${(heap / own).toFixed(2)} times the time)`);
}
