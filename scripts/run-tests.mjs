// Runs the compiled uvu suites (build/test, made by `npm run pretest`) and ends with one plain
// summary line, "N passed, N failed", that CI reads. The exit code is uvu's.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const uvu = fileURLToPath(new URL('../node_modules/uvu/bin.js', import.meta.url));
const args = [uvu, 'build/test', '\\.test\\.js$', '--no-color', ...process.argv.slice(2)];
const run = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
process.stdout.write(run.stdout ?? '');

const count = (label) => Number((run.stdout ?? '').match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
const total = count('Total');
const passed = count('Passed');
const skipped = count('Skipped');
const failed = total - passed - skipped + (run.status !== 0 && total === passed ? 1 : 0);
process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = total === 0 ? 1 : run.status ?? 1;
