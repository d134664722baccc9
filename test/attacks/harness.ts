// The parent side of the attack suites: runs the cases of each (group, preset) batch in child
// processes, so that a crash (SIGSEGV, abort) or a hang is one failing case, not a dead suite.
//
// A child runs many cases and announces each one as it starts; if it dies or stops talking past the
// case's time limit, the case it was running is marked crashed or hung, the child is killed, and a
// new child runs the rest of the batch. After MAX_RESTARTS such deaths in one batch the remaining
// cases are reported as not run, which fails their tests too: the suite stays fast on a broken
// engine and complete on a sound one.

import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { presetNamed } from '../presets.js';
import { CASE_TIMEOUT_MS, type AttackCase } from './case.js';
import { GROUPS } from './groups.js';

export type Outcome = 'passed' | 'failed' | 'crashed' | 'hung' | 'not run';

export interface CaseResult {
  readonly id: string;
  readonly test: string;
  readonly outcome: Outcome;
  readonly detail: string;
}

export interface Batch {
  readonly group: string;
  readonly preset: string;
  /** Run every case in a child of its own (for cases that change process-wide state). */
  readonly alone?: boolean;
}

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
/** How long a child may take to load and to move from one case to the next. */
const STARTUP_MS = 20_000;
const MAX_RESTARTS = 25;

interface ChildRun {
  /** Results of the cases that ended (passed or failed) in this child. */
  readonly ended: Map<number, { ok: boolean; why: string }>;
  /** The case that was running when the child died or hung, if any. */
  readonly running: number | undefined;
  readonly death: 'crashed' | 'hung' | undefined;
  readonly detail: string;
}

/** One child process over `indices` of a batch. */
function runChild(batch: Batch, indices: readonly number[], cases: readonly AttackCase[]): Promise<ChildRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, batch.group, batch.preset, indices.join(',')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ended = new Map<number, { ok: boolean; why: string }>();
    let running: number | undefined;
    let done = false;
    let hung = false;
    let pending = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, ms);
    };
    arm(STARTUP_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let record: { i?: number; start?: number; t?: number; ok?: number; why?: string; done?: number };
        try {
          record = JSON.parse(text);
        } catch {
          stderr += `stdout: ${text}\n`;
          continue;
        }
        if (record.done === 1) {
          done = true;
          running = undefined;
        } else if (record.start === 1) {
          running = record.i;
          arm(record.t ?? cases[record.i!]?.timeoutMs ?? CASE_TIMEOUT_MS);
        } else if (record.i !== undefined) {
          ended.set(record.i, { ok: record.ok === 1, why: record.why ?? '' });
          running = undefined;
          arm(STARTUP_MS);
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const clean = done && code === 0;
      const death = clean ? undefined : hung ? 'hung' : 'crashed';
      const how = hung ? 'no progress within the time limit; killed' : `exit code ${code}, signal ${signal}`;
      resolve({ ended, running, death, detail: clean ? '' : `${how}${stderr.trim() === '' ? '' : `; stderr: ${stderr.trim().slice(-600)}`}` });
    });
  });
}

/** Every case of one batch, each with its outcome. */
async function runBatch(batch: Batch): Promise<CaseResult[]> {
  const cases = GROUPS[batch.group]!(presetNamed(batch.preset));
  const results: (CaseResult | undefined)[] = new Array(cases.length).fill(undefined);
  let left = cases.map((_, i) => i);
  let deaths = 0;
  while (left.length > 0) {
    if (deaths >= MAX_RESTARTS) {
      for (const i of left) {
        results[i] = { id: cases[i]!.id, test: cases[i]!.test, outcome: 'not run', detail: `not run: this batch's children died ${deaths} times` };
      }
      break;
    }
    const chunk = batch.alone ? left.slice(0, 1) : left;
    const run = await runChild(batch, chunk, cases);
    for (const [i, r] of run.ended) {
      results[i] = { id: cases[i]!.id, test: cases[i]!.test, outcome: r.ok ? 'passed' : 'failed', detail: r.why };
    }
    if (run.death !== undefined) {
      deaths++;
      // The case that was running died with the child; if none was (it died between cases, or while
      // loading), the first case not yet ended takes the blame, so that the loop always advances.
      const blamed = run.running ?? chunk.find((i) => !run.ended.has(i));
      if (blamed !== undefined) results[blamed] = { id: cases[blamed]!.id, test: cases[blamed]!.test, outcome: run.death, detail: run.detail };
    }
    left = left.filter((i) => results[i] === undefined);
  }
  // ATTACK_REPORT=file: every case that did not pass, one JSON line each, for triage.
  const report = process.env.ATTACK_REPORT;
  if (report) {
    for (const r of results) if (r!.outcome !== 'passed') appendFileSync(report, JSON.stringify({ preset: batch.preset, group: batch.group, ...r }) + '\n');
  }
  return results as CaseResult[];
}

/** Runs the batches, as many children at once as there are cores (at least 2). */
export async function runBatches(batches: readonly Batch[]): Promise<CaseResult[][]> {
  const out: CaseResult[][] = new Array(batches.length);
  let next = 0;
  const lanes = Math.max(2, Math.min(4, availableParallelism()));
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < batches.length) {
      const k = next++;
      out[k] = await runBatch(batches[k]!);
    }
  }));
  return out;
}

/** Groups results by their test name, in the order the tests first appear. */
export function byTest(results: readonly CaseResult[]): Map<string, CaseResult[]> {
  const tests = new Map<string, CaseResult[]>();
  for (const r of results) {
    const list = tests.get(r.test);
    if (list === undefined) tests.set(r.test, [r]);
    else list.push(r);
  }
  return tests;
}

/** A failure message listing what went wrong, the first few cases in full. */
export function explain(results: readonly CaseResult[]): string {
  const bad = results.filter((r) => r.outcome !== 'passed');
  const counts = new Map<Outcome, number>();
  for (const r of bad) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  const summary = [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
  const shown = bad.filter((r) => r.outcome !== 'not run').slice(0, 6).map((r) => `  [${r.outcome}] ${r.id}: ${r.detail.split('\n')[0]}`);
  return `${bad.length} of ${results.length} cases broke the promise (${summary}):\n${shown.join('\n')}`;
}

/**
 * One uvu suite per preset, a test per case's test name (known from the case lists, without
 * running anything), each awaiting one run of every batch, started by the first test to ask. No
 * top-level await: Bun's uvu loads test files with require().
 */
export function defineSuites(label: string, presets: readonly { name: string }[], batches: readonly Batch[]): void {
  let pending: Promise<CaseResult[][]> | undefined;
  const results = (): Promise<CaseResult[][]> => (pending ??= (async () => {
    const started = Date.now();
    const all = await runBatches([...batches]);
    if (process.env['ATTACK_TIMING']) console.log(`${label}: ${batches.length} batches in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return all;
  })());
  for (const preset of presets) {
    const test = suite(`${label}: ${preset.name}`);
    const mine = batches.map((b, k) => [b, k] as const).filter(([b]) => b.preset === preset.name);
    const names = new Set(mine.flatMap(([b]) => GROUPS[b.group]!(presetNamed(b.preset)).map((c) => c.test)));
    for (const name of names) {
      test(name, async () => {
        const all = await results();
        const cases = mine.flatMap(([, k]) => all[k]!).filter((r) => r.test === name);
        assert.ok(cases.length > 0, 'no case of this test ran');
        assert.ok(cases.every((r) => r.outcome === 'passed'), explain(cases));
      });
    }
    test.run();
  }
}
