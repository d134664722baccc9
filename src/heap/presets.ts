// Wires the presets into `new Heap()`. Kept apart from heap.ts so that the preset classes can
// extend Heap without a cycle between the modules.

import { DebugHeap } from '../debug/debug-heap.js';
import { ClassicHeap } from './classic.js';
import { FastHeap } from './fast.js';
import { Heap, setPresetFactory } from './heap.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import { SharedHeap, attachShared } from './shared.js';
import { RecordingHeap } from '../trace/record.js';

function create(options: ResolvedOptions): Heap {
  if (options.shared) return new SharedHeap(options);
  if (options.record) return new RecordingHeap(options, create(resolveOptions({ ...options, record: false })));
  if (options.debug) return new DebugHeap(options, create(resolveOptions({ ...options, debug: false })));
  return options.preset === 'classic' ? new ClassicHeap(options) : new FastHeap(options);
}

setPresetFactory(create, attachShared);

export { Heap, ClassicHeap, FastHeap, DebugHeap, SharedHeap };
