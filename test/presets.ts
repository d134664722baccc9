// The heap configurations every contract suite runs against, in one place. A suite loops over
// PRESETS; a new preset (or a rewritten engine) is covered everywhere by adding one line here.

import type { HeapOptions } from '../src/index.js';

export interface PresetEntry {
  /** Short and unique: it names tests and child-process batches. */
  readonly name: string;
  readonly options: HeapOptions;
}

export const PRESETS: readonly PresetEntry[] = [
  { name: 'fast', options: { preset: 'fast' } },
  { name: 'classic first_fit', options: { preset: 'classic', algorithm: 'first_fit' } },
  { name: 'classic best_fit', options: { preset: 'classic', algorithm: 'best_fit' } },
  { name: 'classic worst_fit', options: { preset: 'classic', algorithm: 'worst_fit' } },
  { name: 'debug fast', options: { debug: true } },
  { name: 'debug classic', options: { preset: 'classic', debug: true } },
  { name: 'shared', options: { shared: true } },
];

export function presetNamed(name: string): PresetEntry {
  const entry = PRESETS.find((p) => p.name === name);
  if (entry === undefined) throw new Error(`no preset named '${name}'`);
  return entry;
}
