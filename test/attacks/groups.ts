// Every attack group by name: the child process looks its cases up here, the parent enumerates them.

import type { CaseGroup } from './case.js';
import { sqliteGroup, zlibGroup } from './interop.js';
import { miscGroup } from './misc.js';
import { sharedGroup } from './shared.js';
import { SHAPES, writeAfterFreeGroup } from './write-after-free.js';

export const GROUPS: Record<string, CaseGroup> = {
  misc: miscGroup,
  shared: sharedGroup,
  zlib: zlibGroup,
  sqlite: sqliteGroup,
};

SHAPES.forEach((shape, i) => {
  GROUPS[`write-after-free-${i}`] = writeAfterFreeGroup(shape, i);
});
