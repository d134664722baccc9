// Addresses of blocks whose memory a heap gave back to the kernel (the last blocks freed in a
// classic region it unmapped, the fast preset's large blocks), each kept as a range of one byte.
// A second free of such a block is then ERR_DOUBLE_FREE, as it is while the memory stays mapped,
// and not ERR_INVALID_POINTER.
//
// Only the ranges are kept, in JavaScript; nothing in them is ever read. A range the heap maps
// again is forgotten (its blocks are live again, and are found as such); an address whose page
// is mapped again by anyone else (another heap, the runtime) is no longer counted as given back,
// since the heap cannot tell its old block from someone else's new one there (one mincore call,
// on the way to an error only). Only the LIMIT most recent ranges are kept, so the memory this
// costs is bounded and lookups stay short.

import { getPageSize, isMapped } from '../os/memory.js';

const LIMIT = 256;

export class ReleasedRanges {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** `[start, end)` was given back to the kernel. */
  add(start: number, end: number): void {
    this.forget(start, end);
    this.starts.push(start);
    this.ends.push(end);
    if (this.starts.length > LIMIT) {
      this.starts.shift();
      this.ends.shift();
    }
  }

  /** `[start, end)` is the heap's again (newly mapped): addresses in it are no longer given back. */
  forget(start: number, end: number): void {
    for (let i = this.starts.length - 1; i >= 0; i--) {
      if (this.starts[i]! < end && start < this.ends[i]!) {
        this.starts.splice(i, 1);
        this.ends.splice(i, 1);
      }
    }
  }

  /** Whether `[address, end)` lies in one range given back, and nothing has mapped `address`'s page since. */
  holds(address: number, end = address + 1): boolean {
    for (let i = this.starts.length - 1; i >= 0; i--) {
      if (this.starts[i]! <= address && end <= this.ends[i]!) {
        const page = getPageSize();
        return !isMapped(address - (address % page), page);
      }
    }
    return false;
  }

  clear(): void {
    this.starts.length = 0;
    this.ends.length = 0;
  }
}
