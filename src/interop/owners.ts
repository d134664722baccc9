// Blocks freed when a JavaScript object that owns them is garbage-collected: a safety net for
// blocks whose lifetime follows a JavaScript object, not the main way to free. The collector runs
// finalizers late or never (at exit, or when memory is plentiful), so code that knows when it is
// done with a block should free it, or use a scope.
//
// The heap tells the registry about every free and every move of a block it tracks, so a block
// freed by hand is never freed again by its owner's finalizer, and a block moved by realloc stays
// tracked at its new address.

import type { Heap } from '../heap/heap.js';

interface Entry {
  readonly ptr: number;
  /** Weak, so that the held value does not keep the owner alive. */
  readonly owner: WeakRef<object>;
}

export class OwnerRegistry {
  private readonly entries = new Map<number, Entry>();
  private readonly registry = new FinalizationRegistry<Entry>((entry) => this.collected(entry));

  /** `mark(ptr)` lets the heap flag a tracked block, so that its free takes the path that asks here. */
  constructor(private readonly heap: Heap, private readonly mark: (ptr: number) => void) {}

  /** Frees `ptr` (a live block) when `owner` is collected, unless it is freed first. */
  add(ptr: number, owner: object): void {
    this.forget(ptr);
    const entry: Entry = { ptr, owner: new WeakRef(owner) };
    this.registry.register(owner, entry, entry);
    this.entries.set(ptr, entry);
    this.mark(ptr);
  }

  /** The block at `ptr` is being freed: its owner's finalizer must not free it again. */
  forget(ptr: number): void {
    const entry = this.entries.get(ptr);
    if (entry === undefined) return;
    this.entries.delete(ptr);
    this.registry.unregister(entry);
  }

  /** realloc moved the block at `from` to `to`: the owner now holds `to`. */
  moved(from: number, to: number): void {
    const entry = this.entries.get(from);
    if (entry === undefined) return;
    this.forget(from);
    const owner = entry.owner.deref();
    if (owner !== undefined) this.add(to, owner);
  }

  /** How many blocks are waiting for their owners. */
  get size(): number {
    return this.entries.size;
  }

  /** The heap is being destroyed: no finalizer may touch it afterwards. */
  clear(): void {
    for (const entry of this.entries.values()) this.registry.unregister(entry);
    this.entries.clear();
  }

  private collected(entry: Entry): void {
    if (this.entries.get(entry.ptr) !== entry) return; // freed by hand, or freed and reused since
    this.entries.delete(entry.ptr);
    try {
      this.heap.free(entry.ptr);
    } catch {
      // A finalizer may not throw (it would end the process). The heap refused the free: it was
      // destroyed, or the block's header was damaged, which check() reports.
    }
  }
}
