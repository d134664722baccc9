// Attacks on the interop helpers: releasing zlib's or SQLite's allocator while C still holds
// memory from it must be refused, leaving the stream or database usable, not abort the process.

import { Heap } from '../../src/index.js';
import { ZStream, loadZlib, zlibAllocator, Z_OK } from '../../src/interop/zlib.js';
import { installSqliteAllocator } from '../../src/interop/sqlite.js';
import type { TestPreset } from '../presets.js';
import { Broken, type AttackCase, type CaseGroup } from './case.js';

function emptied(heap: Heap, what: string): void {
  heap.trim(); // debug mode: empties the quarantine
  const used = heap.stats().usedBlocks;
  if (used !== 0) throw new Broken(`${used} blocks still in use after ${what}`);
  heap.check();
}

export const zlibGroup: CaseGroup = (preset: TestPreset): AttackCase[] => [{
  id: 'zlibAllocator(heap).release() while a deflate stream is open',
  test: 'releasing zlib\'s allocator while a stream is open is refused, and the stream ends cleanly',
  run() {
    const zlib = loadZlib();
    const heap = new Heap(preset.options);
    const allocator = zlibAllocator(heap);
    const stream = heap.alloc(ZStream);
    allocator.install(stream);
    if (zlib.deflateInit(stream, 6) !== Z_OK) throw new Broken('deflateInit failed');
    let refused = false;
    try {
      allocator.release();
    } catch {
      refused = true;
    }
    let end: number | string;
    try {
      end = zlib.deflateEnd(stream);
    } catch (error) {
      end = String(error);
    }
    if (!refused) throw new Broken(`release() with a stream open was accepted (then deflateEnd gave ${end})`);
    if (end !== Z_OK) throw new Broken(`deflateEnd after the refused release gave ${end}`);
    if (allocator.error !== undefined) throw new Broken(`a callback failed: ${String(allocator.error)}`);
    heap.free(stream);
    allocator.release();
    emptied(heap, 'deflateEnd');
    heap.destroy();
  },
}];

/** One case a child: SQLite takes its allocator once per process. */
export const sqliteGroup: CaseGroup = (preset: TestPreset): AttackCase[] => [{
  id: 'installSqliteAllocator(heap).release() while a database is open',
  test: 'releasing SQLite\'s allocator while a database is open is refused, not an abort',
  run() {
    const heap = new Heap(preset.options);
    const sqlite = installSqliteAllocator(heap);
    const lib = sqlite.library;
    const open = lib.func('int sqlite3_open(const char *filename, _Out_ void **db)');
    const exec = lib.func('int sqlite3_exec(void *db, const char *sql, void *cb, void *arg, void *err)');
    const close = lib.func('int sqlite3_close(void *db)');
    const shutdown = lib.func('int sqlite3_shutdown(void)');
    const db: unknown[] = [null];
    if (open(':memory:', db) !== 0) throw new Broken('sqlite3_open failed');
    if (exec(db[0], 'CREATE TABLE t(a); INSERT INTO t VALUES (1), (2);', null, null, null) !== 0) throw new Broken('exec failed');
    let refused = false;
    try {
      sqlite.release();
    } catch {
      refused = true;
    }
    if (!refused) throw new Broken('release() with a database open was accepted');
    if (exec(db[0], 'INSERT INTO t VALUES (3);', null, null, null) !== 0) throw new Broken('the database is unusable after the refused release');
    if (close(db[0]) !== 0 || shutdown() !== 0) throw new Broken('close or shutdown failed');
    sqlite.release();
    emptied(heap, 'sqlite3_shutdown');
  },
}];
