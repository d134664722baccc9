// The text views of a heap: print_memory and the leak check, in the course design's exact format.
// They read a snapshot, so every engine prints the same way.

import { hex } from '../heap/errors.js';
import type { HeapSnapshot } from '../heap/types.js';

/** print_memory: every region with its blocks, then the free list. Ends with a newline. */
export function formatMemory(snapshot: HeapSnapshot): string {
  let out = '-- Current Memory State --\n';
  for (const region of snapshot.regions) {
    out += `[REGION ${hex(region.address)}]\n`;
    for (const b of region.blocks) {
      out += `  [BLOCK ${hex(b.address)}-${hex(b.address + b.size)}] ${b.size}\t` +
        `[${b.free ? 'FREE' : 'USED'}]\t'${b.name}'\n`;
    }
  }
  out += '\n-- Free List --\n';
  for (const b of snapshot.freeList) out += `[${hex(b)}] -> `;
  return out + 'NULL\n';
}

/** The leak check: every block still in use, then how many and how many bytes. */
export function formatLeaks(snapshot: HeapSnapshot): string {
  let out = '-- Leak Check --\n';
  let count = 0;
  let bytes = 0;
  for (const region of snapshot.regions) {
    for (const b of region.blocks) {
      if (b.free) continue;
      out += `[BLOCK ${hex(b.address)}] ${b.size}\t'${b.name}'\n`;
      count++;
      bytes += b.size;
    }
  }
  return out + `\n-- Summary --\n${count} blocks lost (${bytes} bytes)\n`;
}
