// Writes after free, in every preset: many values written into each of a freed block's first words,
// each followed by each kind of call, every case in a child process (see attacks/harness.ts). A test
// passes when none of its cases crashed, hung, threw anything but ERR_HEAP_CORRUPTED or changed a
// live block.

import { WITH_FITS as PRESETS } from './presets.js';
import { GROUPS } from './attacks/groups.js';
import { defineSuites, type Batch } from './attacks/harness.js';

const groups = Object.keys(GROUPS).filter((g) => g.startsWith('write-after-free-'));
const batches: Batch[] = PRESETS.flatMap((p) => groups.map((group) => ({ group, preset: p.name })));

defineSuites('write after free', PRESETS, batches);
