// release() of the zlib and SQLite allocators while C still holds their memory: refused with a
// clear error, and everything stays usable. Each case runs in a child process, so that a callback
// called after it was unregistered (an abort) fails its test instead of the suite.

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const entry = new URL('../src/index.js', import.meta.url).href;
const zlibEntry = new URL('../src/interop/zlib.js', import.meta.url).href;
const sqliteEntry = new URL('../src/interop/sqlite.js', import.meta.url).href;

function child(body: string, args: string[] = []): Record<string, unknown> {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', body, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.is(run.signal, null, `the child died by ${run.signal}: ${run.stderr}`);
  assert.is(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

const attempt = `const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.message; } };`;

for (const preset of ['fast', 'classic']) {
  test(`zlibAllocator.release() is refused while a stream is open, and the stream still finishes (${preset})`, () => {
    const out = child(`
      const { Heap } = await import(${JSON.stringify(entry)});
      const z = await import(${JSON.stringify(zlibEntry)});
      ${attempt}
      const zlib = z.loadZlib();
      const heap = new Heap({ preset: process.argv[1] });
      const allocator = z.zlibAllocator(heap);
      const stream = heap.alloc(z.ZStream);
      allocator.install(stream);
      const out = {};
      out.init = zlib.deflateInit(stream, 6);
      out.liveOpen = allocator.liveBlocks;
      out.refused = attempt(() => allocator.release());
      const input = new TextEncoder().encode('heap block free '.repeat(2000));
      const src = heap.malloc(input.length);
      heap.bytes(src).set(input);
      const dst = heap.malloc(65536);
      heap.encode(stream, z.ZStream, { ...heap.decode(stream, z.ZStream), next_in: src, avail_in: input.length, next_out: dst, avail_out: 65536 });
      out.deflate = zlib.deflate(stream, z.Z_FINISH);
      out.total = Number(heap.decode(stream, z.ZStream).total_out);
      out.end = zlib.deflateEnd(stream);
      out.liveEnded = allocator.liveBlocks;
      out.released = attempt(() => allocator.release());
      out.again = attempt(() => allocator.release());
      out.install = attempt(() => allocator.install(stream));
      out.error = allocator.error ? String(allocator.error) : null;
      heap.free(src); heap.free(dst); heap.free(stream);
      out.inUse = heap.stats().inUse;
      heap.check();
      console.log(JSON.stringify(out));
    `, [preset]);
    assert.is(out.init, 0, 'Z_OK');
    assert.ok((out.liveOpen as number) >= 3, `zlib's state: ${out.liveOpen} blocks`);
    assert.match(String(out.refused), /^zlibAllocator: release\(\) refused: \d+ blocks zlib allocated through it are still live/);
    assert.is(out.deflate, 1, 'Z_STREAM_END: the callbacks still work after the refusal');
    assert.ok((out.total as number) > 0 && (out.total as number) < 2000);
    assert.is(out.end, 0, 'deflateEnd succeeds, through the still-registered zfree');
    assert.is(out.liveEnded, 0);
    assert.is(out.released, 'ok');
    assert.is(out.again, 'ok', 'a second release does nothing');
    assert.match(String(out.install), /after release/);
    assert.is(out.error, null);
    assert.is(out.inUse, 0, 'every block of zlib was given back');
  });

  test(`installSqliteAllocator.release() is refused while a database is open or SQLite is initialized, without an abort (${preset})`, () => {
    const out = child(`
      const { Heap } = await import(${JSON.stringify(entry)});
      const { installSqliteAllocator } = await import(${JSON.stringify(sqliteEntry)});
      ${attempt}
      const heap = new Heap({ preset: process.argv[1] });
      const sqlite = installSqliteAllocator(heap);
      const lib = sqlite.library;
      const open = lib.func('int sqlite3_open(const char *filename, _Out_ void **db)');
      const exec = lib.func('int sqlite3_exec(void *db, const char *sql, void *cb, void *arg, void *err)');
      const close = lib.func('int sqlite3_close(void *db)');
      const shutdown = lib.func('int sqlite3_shutdown(void)');
      const out = {};
      const db = [null];
      out.open = open(':memory:', db);
      out.liveOpen = sqlite.liveBlocks;
      out.refusedOpen = attempt(() => sqlite.release());
      out.exec = exec(db[0], 'CREATE TABLE t(a); INSERT INTO t VALUES (1), (2), (3);', null, null, null);
      out.close = close(db[0]);
      out.refusedInitialized = attempt(() => sqlite.release());
      out.shutdown = shutdown();
      out.liveShut = sqlite.liveBlocks;
      out.released = attempt(() => sqlite.release());
      out.again = attempt(() => sqlite.release());
      const heapBlocks = heap.stats().usedBlocks;
      // SQLite is back on its own allocator: it can open a database again, and the heap sees none of it.
      const db2 = [null];
      out.reopen = open(':memory:', db2);
      out.exec2 = exec(db2[0], 'CREATE TABLE u(b); INSERT INTO u VALUES (4);', null, null, null);
      out.heapUntouched = heap.stats().usedBlocks === heapBlocks;
      out.close2 = close(db2[0]);
      out.error = sqlite.error ? String(sqlite.error) : null;
      heap.check();
      console.log(JSON.stringify(out));
    `, [preset]);
    assert.equal([out.open, out.exec, out.close, out.shutdown, out.reopen, out.exec2, out.close2], [0, 0, 0, 0, 0, 0, 0], 'SQLITE_OK everywhere');
    assert.ok((out.liveOpen as number) > 0);
    assert.match(String(out.refusedOpen), /^installSqliteAllocator: release\(\) refused: \d+ blocks SQLite allocated from the heap are still live/);
    assert.match(String(out.refusedInitialized), /release\(\) refused: SQLite is still initialized; call sqlite3_shutdown\(\) first/);
    assert.is(out.liveShut, 0);
    assert.is(out.released, 'ok');
    assert.is(out.again, 'ok');
    assert.is(out.heapUntouched, true);
    assert.is(out.error, null);
  });
}

test.run();
