// The attack suite beyond writes after free (see attacks/misc.ts, attacks/shared.ts and
// attacks/interop.ts for the cases), in every preset, each case in a child process so that a crash
// or a hang fails its test instead of ending the suite.

import { WITH_FITS as PRESETS, presetNamed } from './presets.js';
import { GROUPS } from './attacks/groups.js';
import { defineSuites, type Batch } from './attacks/harness.js';

const batches: Batch[] = PRESETS.flatMap((p) => [
  { group: 'misc', preset: p.name },
  { group: 'shared', preset: p.name },
  { group: 'zlib', preset: p.name },
  { group: 'sqlite', preset: p.name, alone: true },
]).filter((b) => GROUPS[b.group]!(presetNamed(b.preset)).length > 0);

defineSuites('attacks', PRESETS, batches);
