// `ffi-heap gen-trace KIND [--ops N] [--seed S]`: a synthetic trace on standard output.

import { parseArgs } from 'node:util';
import { formatTrace } from '../trace/format.js';
import { MAX_OPS, TRACE_KINDS, generateTrace } from '../trace/generate.js';

export const GEN_TRACE_USAGE = `usage: ffi-heap gen-trace KIND [--ops N] [--seed S]

Writes a deterministic synthetic trace (malloc-lab format) to standard output: about N requests
(default 10000), then frees for every block still live. Kinds:
${TRACE_KINDS.map(({ kind, about }) => `  ${kind.padEnd(9)} ${about}`).join('\n')}
`;

export function genTraceCommand(argv: readonly string[], out: (text: string) => void, err: (text: string) => void): number {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ops: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out(GEN_TRACE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    err(`ffi-heap gen-trace: give one kind\n\n${GEN_TRACE_USAGE}`);
    return 2;
  }
  const ops = values.ops === undefined ? 10_000 : Number(values.ops);
  if (!Number.isSafeInteger(ops) || ops < 1 || ops > MAX_OPS) {
    err(`ffi-heap gen-trace: --ops must be a whole number from 1 to ${MAX_OPS}, got '${values.ops}'\n`);
    return 2;
  }
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isSafeInteger(seed)) {
    err(`ffi-heap gen-trace: --seed must be a whole number, got '${values.seed}'\n`);
    return 2;
  }
  try {
    out(formatTrace(generateTrace(positionals[0]!, ops, seed)));
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    err(`ffi-heap gen-trace: ${error.message}\n`);
    return 2;
  }
  return 0;
}
