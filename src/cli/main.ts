#!/usr/bin/env node
// The ffi-heap command line.

import { runDemo } from './demo.js';

const USAGE = `usage: ffi-heap <command>

commands:
  demo     a short tour: allocate, free, reallocate, and print the heap after each step
  help     this text
`;

function main(argv: readonly string[]): number {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo':
      if (rest.length > 0) break;
      runDemo();
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
  }
  process.stderr.write(command === undefined ? USAGE : `ffi-heap: unknown command '${argv.join(' ')}'\n\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
