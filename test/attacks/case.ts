// What an attack case is, shared by the parent (which names and judges cases) and the child
// process (which runs them). A group builds its list of cases for one preset; both sides build the
// same list, so a case is named across the process boundary by its index alone.

import type { TestPreset } from '../presets.js';

export interface AttackCase {
  /** Unique within its group and preset; says what is done, e.g. `cached 40 · word 0 = 0x10 · trim`. */
  readonly id: string;
  /** Which uvu test reports this case: cases with the same test name are asserted together. */
  readonly test: string;
  /** How long the case may run before it counts as a hang (default CASE_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /**
   * Runs the case. It returns normally when the heap kept its promises; it throws (anything) to
   * say how it did not. A crash or a hang of the process is judged by the parent.
   */
  run(): void | Promise<void>;
}

/** Builds a group's cases for one preset; [] when the group does not apply to it. */
export type CaseGroup = (preset: TestPreset) => AttackCase[];

export const CASE_TIMEOUT_MS = 4000;

/** The failure a case reports: the message alone is shown, without a stack. */
export class Broken extends Error {}
