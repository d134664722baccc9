// The child process of the attack suites: `node child.js <group> <preset> <i,j,...>` runs those
// cases of the group one after another and writes one JSON line as each starts and ends, with a
// synchronous write, so that the parent knows which case was running if the process dies or hangs.

import { writeSync } from 'node:fs';
import { presetNamed } from '../presets.js';
import { Broken } from './case.js';
import { GROUPS } from './groups.js';

function line(record: object): void {
  writeSync(1, JSON.stringify(record) + '\n');
}

function describe(error: unknown): string {
  if (error instanceof Broken) return error.message;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${code === undefined ? '' : ` ${String(code)}`}: ${error.message}` +
      `\n${(error.stack ?? '').split('\n').slice(1, 4).join('\n')}`;
  }
  return `threw a non-Error: ${String(error)}`;
}

const [group, presetName, list] = process.argv.slice(2);
const factory = GROUPS[group!];
if (factory === undefined) throw new Error(`no attack group '${group}'`);
const cases = factory(presetNamed(presetName!));
for (const i of (list ?? '').split(',').filter((s) => s !== '').map(Number)) {
  const c = cases[i];
  if (c === undefined) throw new Error(`no case ${i} in group '${group}' for '${presetName}'`);
  line({ i, start: 1, t: c.timeoutMs });
  try {
    await c.run();
    line({ i, ok: 1 });
  } catch (error) {
    line({ i, ok: 0, why: describe(error) });
  }
}
line({ done: 1 });
// Workers or handles a case left behind must not keep the child alive.
process.exit(0);
