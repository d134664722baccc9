#!/usr/bin/env node
// The ffi-heap command line. Every command takes --help; `ffi-heap --version` prints the
// package's version. Errors are one line on standard error, `ffi-heap COMMAND: what went wrong`,
// with exit status 2 for a command line that cannot run and 1 for a run that failed.

import { readFileSync } from 'node:fs';
import { DEMO_USAGE, demoCommand } from './demo.js';
import { GEN_TRACE_USAGE, genTraceCommand } from './gen-trace.js';
import { REPLAY_USAGE, replayCommand } from './replay.js';
import { VIEW_USAGE, viewCommand } from './view.js';

const USAGE = `usage: ffi-heap <command> [options]

commands:
  demo       a short tour: allocate, free, reallocate, and print the heap after each step
  replay     replay allocation traces against ffi-heap and its peers: verify, time, score
  gen-trace  write a synthetic allocation trace
  view       see a trace move through the heap: an interactive page, one self-contained HTML file
  help       this text (also --help, -h); --version (-V) prints the version

${DEMO_USAGE}
${REPLAY_USAGE}
${GEN_TRACE_USAGE}
${VIEW_USAGE}`;

const out = (text: string): void => void process.stdout.write(text);
const err = (text: string): void => void process.stderr.write(text);

/** The package's version, from its package.json (two levels up in lib/, three in build/src/). */
function version(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'ffi-heap' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // Not here: the next place up.
    }
  }
  return 'unknown';
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'demo':
        return demoCommand(rest, out, err);
      case 'replay':
        return await replayCommand(rest, out, err);
      case 'gen-trace':
        return genTraceCommand(rest, out, err);
      case 'view':
        return await viewCommand(rest, out, err);
      case 'help':
      case '--help':
      case '-h':
        out(USAGE);
        return 0;
      case '--version':
      case '-V':
        out(`ffi-heap ${version()}\n`);
        return 0;
    }
  } catch (error) {
    // parseArgs reports unknown options and missing values as TypeErrors with a code.
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`ffi-heap ${command}: ${(error as Error).message}\n(ffi-heap ${command} --help lists the options)\n`);
      return 2;
    }
    // Anything else is a run that failed: one line, not a stack trace.
    err(`ffi-heap ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  err(command === undefined ? USAGE : `ffi-heap: unknown command '${command}' (ffi-heap --help lists the commands)\n`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
