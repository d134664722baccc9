// The documentation cannot drift from the code: every export of every entry point, and every public
// member of a heap, has a TSDoc comment in the published .d.ts files and appears in the README's
// API section, which is kept by hand.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../../', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | { types: string }> };
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const api = readme.slice(readme.indexOf('\n## API'), readme.indexOf('\n## Environment variables'));

/** Every .d.ts under lib/, by path. */
function declarations(dir = join(root, 'lib')): Map<string, string> {
  const found = new Map<string, string>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const [p, text] of declarations(path)) found.set(p, text);
    else if (entry.name.endsWith('.d.ts')) found.set(path, readFileSync(path, 'utf8'));
  }
  return found;
}
const dts = declarations();

/** The names a .d.ts exports: re-export lists and exported declarations. */
function exportedNames(text: string): string[] {
  const names: string[] = [];
  for (const [, list] of text.matchAll(/^export (?:type )?\{([^}]*)\}/gm)) {
    for (const item of list!.split(',')) {
      const name = item.trim().replace(/^type /, '').split(/\s+as\s+/).pop()!;
      if (name !== '') names.push(name);
    }
  }
  for (const [, name] of text.matchAll(/^export (?:declare )?(?:abstract )?(?:class|function|const|let|interface|type|enum) (\w+)/gm)) names.push(name!);
  return [...new Set(names)];
}

/** Whether `name` is declared somewhere under lib/ with a TSDoc comment right above it. */
function documented(name: string): boolean {
  const declaration = new RegExp(`^export (?:declare )?(?:abstract )?(?:class|function|const|let|interface|type|enum) ${name}\\b`, 'gm');
  for (const text of dts.values()) {
    for (const match of text.matchAll(declaration)) if (/\*\/\s*$/.test(text.slice(0, match.index))) return true;
  }
  return false;
}

const entries = Object.entries(manifest.exports).filter(([path]) => path !== './package.json')
  .map(([path, target]) => [path, join(root, (target as { types: string }).types)] as const);

test('every export of every entry point has a TSDoc comment', () => {
  const missing: string[] = [];
  for (const [path, file] of entries) {
    for (const name of exportedNames(dts.get(file)!)) if (!documented(name)) missing.push(`${path}: ${name}`);
  }
  assert.equal(missing, [], `undocumented: ${missing.join(', ')}`);
});

test('every export of every entry point is in the README\'s API section', () => {
  const missing: string[] = [];
  for (const [path, file] of entries) {
    for (const name of exportedNames(dts.get(file)!)) if (!new RegExp(`\`[^\`]*\\b${name}\\b[^\`]*\``).test(api)) missing.push(`${path}: ${name}`);
  }
  assert.equal(missing, [], `not in the README: ${missing.join(', ')}`);
});

/** Public members of an interface or class body in a .d.ts, with whether each has a TSDoc comment. */
function members(text: string, header: RegExp): { name: string; static: boolean; documented: boolean }[] {
  const start = text.search(header);
  assert.ok(start >= 0, `${header} is declared`);
  const body = text.slice(start, text.indexOf('\n}', start));
  const found: { name: string; static: boolean; documented: boolean }[] = [];
  const lines = body.split('\n').slice(1);
  lines.forEach((line, i) => {
    const m = /^ {4}((?:readonly |get |static )*)(\w+)\??[(<:]/.exec(line);
    if (m === null || /^ {4}(private|protected|constructor)/.test(line)) return;
    found.push({ name: m[2]!, static: m[1]!.includes('static'), documented: /\*\/\s*$/.test(lines[i - 1] ?? '') });
  });
  return found;
}

test('every public member of a heap has a TSDoc comment and is in the README', () => {
  const text = dts.get(join(root, 'lib/heap/heap.d.ts'))!;
  const all = [...members(text, /^export interface HeapOperations \{/m), ...members(text, /^export declare class Heap \{/m)];
  assert.ok(all.length > 25, `found ${all.length} members`);
  assert.equal(all.filter((m) => !m.documented).map((m) => m.name), [], 'undocumented members');
  // Instance members as `heap.name`, static ones as `Heap.name`.
  assert.equal(all.filter((m) => !api.includes(`${m.static ? 'Heap' : 'heap'}.${m.name}`)).map((m) => m.name), [], 'members missing from the README');
});

test.run();
