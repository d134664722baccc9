// The child process of ./writes-after-free.test.ts: reads one JSON request a line on stdin,
// `{ preset: name, program: Op[] }`, runs the program on a fresh heap of that preset with writes
// after free, and writes one JSON line back: `{ ok: true, corrupted }` or `{ ok: false, failure }`.
// It lives in its own process so that a crash (SIGSEGV) or a hang fails one program, not the suite.

import { createInterface } from 'node:readline';
import { ModelRun, type Op } from './model.js';
import { PRESETS } from './presets.js';

function runProgram(presetName: string, program: readonly Op[]): object {
  const preset = PRESETS.find((p) => p.name === presetName);
  if (preset === undefined) return { ok: false, failure: `no preset '${presetName}'` };
  const model = new ModelRun(preset.options, { writesAfterFree: true });
  try {
    for (const op of program) if (!model.step(op)) break;
    model.finish();
    return { ok: true, corrupted: model.corruption };
  } catch (error) {
    model.dispose();
    const e = error as Error;
    return { ok: false, failure: `${e.name}${'code' in e ? ` ${String(e.code)}` : ''}: ${e.message}` };
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const { preset, program } = JSON.parse(line) as { preset: string; program: Op[] };
  process.stdout.write(JSON.stringify(runProgram(preset, program)) + '\n');
});
