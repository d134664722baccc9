// SQLite allocating from the heap. SQLite's allocator is set once per process, so each case runs
// in a child process.

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const entry = new URL('../src/index.js', import.meta.url).href;
const sqliteEntry = new URL('../src/interop/sqlite.js', import.meta.url).href;

const CHILD = `
const { Heap } = await import(${JSON.stringify(entry)});
const { installSqliteAllocator } = await import(${JSON.stringify(sqliteEntry)});
const preset = process.argv[1];
const heap = new Heap({ preset });
const sqlite = installSqliteAllocator(heap);
const lib = sqlite.library;
const open = lib.func('int sqlite3_open(const char *filename, _Out_ void **db)');
const exec = lib.func('int sqlite3_exec(void *db, const char *sql, void *cb, void *arg, void *err)');
const prepare = lib.func('int sqlite3_prepare_v2(void *db, const char *sql, int n, _Out_ void **stmt, void *tail)');
const step = lib.func('int sqlite3_step(void *stmt)');
const column = lib.func('int64_t sqlite3_column_int64(void *stmt, int col)');
const finalize = lib.func('int sqlite3_finalize(void *stmt)');
const close = lib.func('int sqlite3_close(void *db)');
const shutdown = lib.func('int sqlite3_shutdown(void)');
const out = {};
const db = [null];
out.open = open(':memory:', db);
out.exec = exec(db[0], "CREATE TABLE t(a INTEGER, b TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<20000) INSERT INTO t SELECT x, printf('row %d', x) FROM c; CREATE INDEX ti ON t(b);", null, null, null);
const stmt = [null];
prepare(db[0], "SELECT count(*), sum(a) FROM t WHERE b LIKE 'row 1%'", -1, stmt, null);
out.step = step(stmt[0]);
out.count = Number(column(stmt[0], 0));
out.sum = Number(column(stmt[0], 1));
finalize(stmt[0]);
try { installSqliteAllocator(new Heap()); out.second = 'no error'; } catch (e) { out.second = e.message; }
out.inUseOpen = heap.stats().inUse;
out.blocksOpen = heap.stats().usedBlocks;
heap.check();
out.close = close(db[0]);
out.shutdown = shutdown();
out.inUseAfter = heap.stats().inUse;
out.blocksAfter = heap.stats().usedBlocks;
heap.check();
out.callbackError = sqlite.error ? String(sqlite.error) : null;
console.log(JSON.stringify(out));
`;

// What the query must find: rows 1, 10-19, 100-199, 1000-1999 and 10000-19999.
const ids = Array.from({ length: 20000 }, (_, i) => i + 1).filter((x) => String(x).startsWith('1'));

for (const preset of ['fast', 'classic']) {
  test(`SQLite allocates from the ${preset} heap: right results, check() passes, nothing left after shutdown`, () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, preset], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as Record<string, number | string | null>;
    assert.equal([out.open, out.exec, out.step, out.close, out.shutdown], [0, 0, 100, 0, 0], 'SQLITE_OK, SQLITE_ROW');
    assert.equal([out.count, out.sum], [ids.length, ids.reduce((a, b) => a + b, 0)]);
    assert.ok((out.inUseOpen as number) > 100_000 && (out.blocksOpen as number) > 50, `SQLite's memory is in the heap: ${out.inUseOpen} bytes`);
    assert.equal([out.inUseAfter, out.blocksAfter], [0, 0], 'after close and shutdown, the heap holds nothing of SQLite');
    assert.is(out.callbackError, null);
    assert.match(String(out.second), /SQLite is already initialized in this process/, 'a second install is refused clearly');
  });
}

test.run();
