// The shared preset's supply of small-object pages: the arena every heap over a shared heap takes
// its pages from (./shared-pages.ts), committed from its start as pages are needed, and the stack
// of pages heaps gave back. Its state is the control block's (./shared-control.ts); every call is
// made under the shared lock. A page handed out has no class, NOT_SLOT marks and its new owner's
// tag; a page taken back has no owner. The arena's first kernel page is never committed, so page
// number 0 means "none".

import { Page } from '../layout/pages.js';
import { alignPage, commit, discard, getPageSize, type Reservation } from '../os/memory.js';
import { F, I } from './shared-control.js';

/** Commit steps: half of what is committed, at least GROWTH_MIN bytes. */
const GROWTH_MIN = 256 * 1024;

export class SmallSupply {
  /** Commits made since the caller last counted them (it adds them to the heap's mmap calls). */
  commits = 0;

  constructor(
    readonly arena: Reservation,
    private readonly ints: Int32Array,
    private readonly floats: Float64Array,
    /** The facts of every page (see ControlLayout): each heap's pages are views of the same. */
    readonly marks: Int8Array,
    readonly classes: Int32Array,
    readonly owners: Int32Array,
    readonly remoteCounts: Int32Array,
    private readonly stack: Int32Array,
  ) {}

  /** The arena's first usable byte: past its first kernel page, which is never committed. */
  static start(): number {
    return Math.max(getPageSize(), Page.BYTES);
  }

  /** Bytes of the arena committed (its first page aside): what `limit` bounds. */
  committed(): number {
    return this.floats[F.SMALL_TOP]! - SmallSupply.start();
  }

  /** Bytes of the arena the process holds: pages ever handed out, but those whose memory went back. */
  held(): number {
    return this.floats[F.SMALL_FRESH]! - SmallSupply.start() - this.floats[F.SMALL_GIVEN_BACK]!;
  }

  /**
   * Up to `want` pages for the heap tagged `tag`, into `into`: pages given back first, then fresh
   * ones, committing a step when none is left, within `room` more committed bytes (each commit
   * counted in `commits`). Returns how many.
   */
  take(into: Int32Array, want: number, tag: number, room: number): number {
    let n = 0;
    while (n < want && this.ints[I.FREE_PAGES]! > 0) {
      const page = this.stack[--this.ints[I.FREE_PAGES]!]!;
      // Memory given back reads as zeros and is the kernel's to back again when written.
      if (this.classes[page] === Page.GIVEN_BACK) this.floats[F.SMALL_GIVEN_BACK]! -= Page.BYTES;
      into[n++] = page;
    }
    while (n < want) {
      const fresh = this.floats[F.SMALL_FRESH]!;
      if (fresh + Page.BYTES > this.floats[F.SMALL_TOP]! && !this.grow(room)) break;
      const page = fresh >>> Page.SHIFT;
      this.floats[F.SMALL_FRESH] = fresh + Page.BYTES;
      this.marks.fill(Page.NOT_SLOT, page << Page.GRANULES_SHIFT, (page + 1) << Page.GRANULES_SHIFT);
      into[n++] = page;
    }
    for (let i = 0; i < n; i++) {
      const page = into[i]!;
      this.classes[page] = 0;
      Atomics.store(this.remoteCounts, page, 0);
      this.owners[page] = tag;
    }
    return n;
  }

  /** Commits the next step of the arena, within `room` more bytes; false when it cannot. */
  private grow(room: number): boolean {
    const top = this.floats[F.SMALL_TOP]!;
    let step = alignPage(Math.max(GROWTH_MIN, (top - SmallSupply.start()) / 2));
    if (top + step > this.arena.size) step = this.arena.size - top;
    if (step > room) step = alignPage(Page.BYTES);
    if (step < Page.BYTES || step > room || !commit(this.arena, top, step)) return false;
    this.floats[F.SMALL_TOP] = top + step;
    this.commits++;
    return true;
  }

  /**
   * Gives back to the kernel the memory of the pages in the stack that fill whole kernel pages,
   * one call per run of neighbouring ones; they stay in the stack, marked Page.GIVEN_BACK. Returns
   * how many calls it made.
   */
  giveBackIdle(): number {
    const unit = Math.max(1, getPageSize() >>> Page.SHIFT);
    const count = this.ints[I.FREE_PAGES]!;
    const fresh = this.floats[F.SMALL_FRESH]! >>> Page.SHIFT;
    const idle = new Set<number>();
    for (let i = 0; i < count; i++) if (this.classes[this.stack[i]!] !== Page.GIVEN_BACK) idle.add(this.stack[i]!);
    // Whole kernel pages: each of their pages idle, or never handed out (past `fresh`).
    const firsts = [...new Set([...idle].map((p) => p - (p % unit)))].sort((a, b) => a - b);
    const whole = firsts.filter((first) => {
      for (let p = first; p < first + unit; p++) if (!idle.has(p) && p < fresh) return false;
      return true;
    });
    let calls = 0;
    for (let i = 0; i < whole.length;) {
      let j = i + 1;
      while (j < whole.length && whole[j] === whole[j - 1]! + unit) j++;
      discard(this.arena, whole[i]! << Page.SHIFT, ((j - i) * unit) << Page.SHIFT);
      calls++;
      for (let k = i; k < j; k++) {
        for (let p = whole[k]!; p < whole[k]! + unit; p++) {
          if (!idle.has(p)) continue;
          this.classes[p] = Page.GIVEN_BACK;
          this.floats[F.SMALL_GIVEN_BACK]! += Page.BYTES;
        }
      }
      i = j;
    }
    return calls;
  }

  /** Takes back the first `count` of `pages` (no class's, marks NOT_SLOT). */
  give(pages: Int32Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const page = pages[i]!;
      this.classes[page] = 0;
      this.owners[page] = 0;
      this.stack[this.ints[I.FREE_PAGES]!++] = page;
    }
  }
}
