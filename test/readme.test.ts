// The README's quick starts run as written. Each ```js block of its "Quick starts" section is a
// whole program: it is written into build/readme/ (inside the package, so `import 'ffi-heap'`
// resolves to this package's lib/ by its own name) and run on the runtime running this suite. A
// `console.log(...)` line whose comment starts with what it prints must print that line, in order;
// the classic preset's printouts must be the course's. A ```js bun block runs under Bun only.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('\n## Quick starts'), readme.indexOf('\n## API'));
const snippets = [...section.matchAll(/```(js(?: bun)?)\n([\s\S]*?)```/g)].map((m) => ({ bun: m[1] === 'js bun', code: m[2]! }));
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const dir = join(root, 'build/readme');

/** What the snippet's commented console.log lines say they print, in order. */
function promised(code: string): string[] {
  return [...code.matchAll(/^\s*console\.log\(.*\);\s*\/\/ ([^:\n]+?)(?::.*)?$/gm)].map((m) => m[1]!.trim());
}

function run(index: number, code: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `quick-start-${index}.mjs`);
  writeFileSync(file, code);
  const { FORCE_COLOR: _, ...env } = process.env; // uvu's, which would colour console.log's numbers
  const child = spawnSync(process.execPath, [file], { encoding: 'utf8', env, timeout: 60_000 });
  assert.is(child.status, 0, `quick start ${index}: ${child.stderr}`);
  assert.is(child.stderr, '');
  return child.stdout;
}

test('the quick starts are there: JavaScript, koffi, bun:ffi, the classic preset\'s fits', () => {
  assert.is(snippets.length, 4);
  assert.is(snippets.filter((s) => s.bun).length, 1);
  assert.ok(snippets.every((s) => /from 'ffi-heap'/.test(s.code)), 'each imports the package by its name');
});

snippets.forEach(({ bun, code }, index) => {
  const first = code.split('\n').find((line) => line.startsWith('import') && !line.includes('ffi-heap')) ?? 'ffi-heap only';
  test(`quick start ${index} (${first}) runs and prints what its comments say`, () => {
    if (bun && !isBun) return; // run under Bun by CI's Bun pass
    const out = run(index, code).split('\n');
    let at = 0;
    for (const line of promised(code)) {
      const found = out.indexOf(line, at);
      assert.ok(found >= 0, `quick start ${index} prints '${line}' (in order); it printed:\n${out.join('\n')}`);
      at = found + 1;
    }
    if (code.includes('printMemory')) {
      // The course's example, fit by fit: where block 6 goes.
      const text = out.join('\n');
      const part = (fit: string): string => text.slice(text.indexOf(`## ${fit}`), text.indexOf('## ', text.indexOf(`## ${fit}`) + 3) >>> 0);
      assert.match(part('first_fit'), /\] 144\t\[USED\]\t'Test Allocation: 6'/);
      assert.match(part('best_fit'), /\] 80\t\[USED\]\t'Test Allocation: 6'\n.*\] 176\t\[USED\]\t'Test Allocation: 2'/);
      assert.match(part('worst_fit'), /\] 80\t\[USED\]\t'Test Allocation: 6'\n.*\] 96\t\[FREE\]\t''/);
    }
  });
});

test.run();
