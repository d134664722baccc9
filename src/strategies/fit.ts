// Free-space search for the classic preset: walk the free list from its head and pick a block of
// at least `need` bytes. The list is in the order blocks were freed, so these are the textbook
// policies exactly, linear in the length of the list. The list's links live in native memory:
// nextFree and blockSize prove what they read, and a walk longer than the count stops with
// freeListOverrun, so a damaged list can neither lead outside the heap nor loop.

/** Which free block the classic preset takes for a request. */
export type FitAlgorithm = 'first_fit' | 'best_fit' | 'worst_fit';

export const FIT_ALGORITHMS: readonly FitAlgorithm[] = ['first_fit', 'best_fit', 'worst_fit'];

/** What a search needs to know about the free list; 0 ends the list. */
export interface FreeList {
  readonly freeHead: number;
  /** How many blocks the list holds: no walk takes more steps. */
  readonly freeCount: number;
  nextFree(block: number): number;
  blockSize(block: number): number;
  /** Throws: a walk reached `block` after freeCount steps. */
  freeListOverrun(block: number): never;
}

/** The search itself: returns a block address, or 0 when no free block is large enough. */
export type FitSearch = (list: FreeList, need: number) => number;

/** The first block that fits. */
export function firstFit(list: FreeList, need: number): number {
  for (let b = list.freeHead, steps = list.freeCount; b !== 0; b = list.nextFree(b)) {
    if (steps-- === 0) list.freeListOverrun(b);
    if (list.blockSize(b) >= need) return b;
  }
  return 0;
}

/** The smallest block that fits; of equal ones, the first found. An exact fit ends the search. */
export function bestFit(list: FreeList, need: number): number {
  let best = 0;
  let bestSize = Infinity;
  for (let b = list.freeHead, steps = list.freeCount; b !== 0; b = list.nextFree(b)) {
    if (steps-- === 0) list.freeListOverrun(b);
    const size = list.blockSize(b);
    if (size >= need && size < bestSize) {
      best = b;
      bestSize = size;
      if (size === need) break;
    }
  }
  return best;
}

/** The largest block, if it fits; of equal ones, the first found. */
export function worstFit(list: FreeList, need: number): number {
  let worst = 0;
  let worstSize = need - 1;
  for (let b = list.freeHead, steps = list.freeCount; b !== 0; b = list.nextFree(b)) {
    if (steps-- === 0) list.freeListOverrun(b);
    const size = list.blockSize(b);
    if (size > worstSize) {
      worst = b;
      worstSize = size;
    }
  }
  return worst;
}

export const FIT_SEARCH: Readonly<Record<FitAlgorithm, FitSearch>> = {
  first_fit: firstFit,
  best_fit: bestFit,
  worst_fit: worstFit,
};
