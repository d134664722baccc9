// A SQLite session whose every allocation comes from ffi-heap, printing the heap as it goes.
// Needs the system's SQLite library (Debian: libsqlite3-0). Run: node examples/sqlite-session.mjs
import { Heap } from 'ffi-heap';
import { installSqliteAllocator } from 'ffi-heap/sqlite';

const heap = new Heap();
const sqlite = installSqliteAllocator(heap); // before anything else opens a database
const lib = sqlite.library;
const open = lib.func('int sqlite3_open(const char *filename, _Out_ void **db)');
const exec = lib.func('int sqlite3_exec(void *db, const char *sql, void *callback, void *arg, void *errmsg)');
const close = lib.func('int sqlite3_close(void *db)');
const shutdown = lib.func('int sqlite3_shutdown(void)');

const show = (when) => {
  const s = heap.stats();
  console.log(`${when.padEnd(28)} ${String(s.usedBlocks).padStart(6)} blocks, ${String(s.inUse).padStart(9)} bytes in use, ${s.mapped} mapped`);
};

const db = [null];
open(':memory:', db);
show('opened');
exec(db[0], 'CREATE TABLE words(id INTEGER PRIMARY KEY, word TEXT)', null, null, null);
exec(db[0], "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000) INSERT INTO words(word) SELECT printf('word-%05d', x) FROM n", null, null, null);
show('50,000 rows inserted');
exec(db[0], 'CREATE INDEX by_word ON words(word)', null, null, null);
show('indexed');
heap.check();
close(db[0]);
show('closed');
shutdown();
show('after sqlite3_shutdown');
sqlite.release();
