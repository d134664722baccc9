// Which threads of this process are alive: how a shared heap learns that a thread which opened it
// is gone (ended, terminated, or its heap never closed), so that what it held can be taken back.
//
// A thread is named by its kernel thread id and the time it started (in clock ticks since boot),
// both read from /proc. The id alone would do until the kernel hands it to a new thread; the pair
// names one thread for the machine's uptime. /proc is read with plain file reads, which run on the
// calling thread in Node and Bun alike, inside worker threads too, and need no FFI call.
//
// Where /proc cannot be read (a sandbox without it), every thread counts as alive: a shared heap
// then never takes back what a thread held, which is how it behaved before it could tell.

import { closeSync, existsSync, openSync, readSync } from 'node:fs';

/** A stat line fits in far less: one buffer for every read (readFileSync takes 64 KiB for a /proc file each time). */
const line = Buffer.alloc(1024);

/** The text of a /proc stat file; throws as openSync does when it is missing. */
function readStat(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return line.toString('latin1', 0, readSync(fd, line, 0, line.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** A thread of this process, as /proc names it. */
export interface ThreadIdentity {
  readonly tid: number;
  /** When the thread started, in clock ticks since boot. */
  readonly start: number;
}

/** The fields of a /proc stat line after its `(comm)`, which may itself hold spaces and parentheses. */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** `starttime` is field 22 of the stat line; the fields after `(comm)` start at field 3. */
const START_FIELD = 22 - 3;

/** The calling thread, or undefined where /proc cannot say. */
export function currentThread(): ThreadIdentity | undefined {
  try {
    const text = readStat('/proc/thread-self/stat');
    const tid = Number.parseInt(text, 10);
    const start = Number(statFields(text)[START_FIELD]);
    if (!Number.isSafeInteger(tid) || tid <= 0 || !Number.isSafeInteger(start) || start < 0) return undefined;
    return { tid, start };
  } catch {
    return undefined;
  }
}

/**
 * Whether the thread named `tid` that started at `start` is still running in this process. A start
 * of 0 is not checked (any running thread with that id counts); a thread id of 0 names no thread
 * that could be checked, and counts as alive.
 */
export function threadAlive(tid: number, start: number): boolean {
  if (!Number.isSafeInteger(tid) || tid <= 0) return true;
  // One stat call, no read: a thread's task directory goes when the thread is reaped.
  if (start === 0) return existsSync(`/proc/self/task/${tid}`);
  let text: string;
  try {
    text = readStat(`/proc/self/task/${tid}/stat`);
  } catch (e) {
    // No such task: the thread has ended. Any other failure says nothing about it.
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  // A thread that has exited but is not reaped yet shows state Z (zombie) or X (dead).
  const fields = statFields(text);
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return start === 0 || Number(fields[START_FIELD]) === start;
}
