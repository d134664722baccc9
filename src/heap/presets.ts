// Wires the presets into `new Heap()`. Kept apart from heap.ts so that the preset classes can
// extend Heap without a cycle between the modules.

import { ClassicHeap } from './classic.js';
import { FastHeap } from './fast.js';
import { Heap, setPresetFactory } from './heap.js';

setPresetFactory((options) => (options.preset === 'classic' ? new ClassicHeap(options) : new FastHeap(options)));

export { Heap, ClassicHeap, FastHeap };
