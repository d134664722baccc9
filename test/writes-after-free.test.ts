// Property: a program that writes random values into freed blocks (their own former data, while
// it is still free and mapped) gets, from every later call, either the right answer or
// HeapError('ERR_HEAP_CORRUPTED'); it never crashes, never hangs, never sees another error code
// for the damage, and every live block keeps its bytes. For every entry of PRESETS.
//
// The programs run in a child process (build/test/waf-runner.js), one JSON line each way, so a
// SIGSEGV or a hang fails one program; fast-check here shrinks it to a short one and the test
// prints it. A crashed or hung child is replaced by a fresh one.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { test } from 'uvu';
import type { Op } from './model.js';
import { PRESETS } from './presets.js';
import { programArbitrary } from './programs.js';

const RUNS = 100;
const LENGTH = 40;
/** A program that has not answered in this long has hung. */
const TIMEOUT_MS = 10_000;
/** Search and shrinking for one preset stop after this long (the failure found so far is kept). */
const PRESET_BUDGET_MS = 30_000;

const runnerFile = new URL('./waf-runner.js', import.meta.url);

type Answer = { ok: true; corrupted: string | null } | { ok: false; failure: string };

/** One child at a time; a crash or a hang ends it, and the next program starts another. */
class Runner {
  private child: ChildProcess | null = null;
  private waiting: ((answer: Answer) => void) | null = null;

  private start(): ChildProcess {
    const child = spawn(process.execPath, [runnerFile.pathname], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    createInterface({ input: child.stdout! }).on('line', (line) => this.settle(JSON.parse(line) as Answer));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return; // one stop() ended after a hang: already answered
      this.child = null;
      this.settle({ ok: false, failure: signal !== null ? `crash: killed by ${signal}` : `crash: exit code ${code} ${stderr.trim().split('\n').slice(-3).join(' | ')}` });
    });
    return child;
  }

  private settle(answer: Answer): void {
    const done = this.waiting;
    this.waiting = null;
    done?.(answer);
  }

  run(preset: string, program: readonly Op[]): Promise<Answer> {
    const child = (this.child ??= this.start());
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle({ ok: false, failure: `hang: no answer in ${TIMEOUT_MS} ms` });
        this.stop();
      }, TIMEOUT_MS);
      this.waiting = (answer) => {
        clearTimeout(timer);
        resolve(answer);
      };
      child.stdin!.write(JSON.stringify({ preset, program }) + '\n');
    });
  }

  stop(): void {
    const child = this.child;
    this.child = null;
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
  }
}

const runner = new Runner();

for (const [i, preset] of PRESETS.entries()) {
  test(`${preset.name}: writes after free get right answers or ERR_HEAP_CORRUPTED, never a crash, a hang or a changed block`, async () => {
    const started = performance.now();
    let corrupted = 0;
    let runs = 0;
    try {
      await fc.assert(fc.asyncProperty(programArbitrary(true, LENGTH), async (program) => {
        runs++;
        const answer = await runner.run(preset.name, program);
        if (!answer.ok) throw new Error(answer.failure);
        if (answer.corrupted !== null) corrupted++;
      }), { numRuns: RUNS, seed: 20261201 + i, interruptAfterTimeLimit: PRESET_BUDGET_MS });
    } catch (error) {
      const e = error as Error;
      const counterexample = e.message.split('\n').find((l) => l.startsWith('Counterexample')) ?? e.message;
      console.log(`  ${preset.name}: FAILED after ${runs} programs (${((performance.now() - started) / 1000).toFixed(1)} s): ${String((e.cause as Error | undefined)?.message ?? '')}\n  ${counterexample}`);
      throw error;
    }
    console.log(`  ${preset.name}: ${runs} programs, ${corrupted} reported ERR_HEAP_CORRUPTED, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
}

test.after(() => runner.stop());

test.run();
