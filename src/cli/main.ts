#!/usr/bin/env node
// The ffi-heap command line.

import { runDemo } from './demo.js';
import { GEN_TRACE_USAGE, genTraceCommand } from './gen-trace.js';
import { REPLAY_USAGE, replayCommand } from './replay.js';

const USAGE = `usage: ffi-heap <command> [options]

commands:
  demo       a short tour: allocate, free, reallocate, and print the heap after each step
  replay     replay allocation traces against ffi-heap and its peers: verify, time, score
  gen-trace  write a synthetic allocation trace
  help       this text

${REPLAY_USAGE}
${GEN_TRACE_USAGE}`;

const out = (text: string): void => void process.stdout.write(text);
const err = (text: string): void => void process.stderr.write(text);

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'demo':
        if (rest.length > 0) break;
        runDemo();
        return 0;
      case 'replay':
        return await replayCommand(rest, out, err);
      case 'gen-trace':
        return genTraceCommand(rest, out, err);
      case 'help':
      case '--help':
      case '-h':
        out(USAGE);
        return 0;
    }
  } catch (error) {
    // parseArgs reports unknown options and missing values as TypeErrors with a code.
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`ffi-heap ${command}: ${(error as Error).message}\n`);
      return 2;
    }
    throw error;
  }
  err(command === undefined ? USAGE : `ffi-heap: unknown command '${argv.join(' ')}'\n\n${USAGE}`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
