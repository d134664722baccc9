// The viewer's page as one self-contained HTML file: its style, its script (the compiled text of
// ../heap/errors.ts, ../debug/format.ts, ./model.ts, ./column.ts and ./page.ts, their import and export words
// taken out, in one module script) and its data (the trace and each heap's record, gzipped, in
// base64, in a JSON script element). It loads nothing from the network.

import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { escapeXml } from '../debug/svg.js';
import { peakPayload, type Trace } from '../trace/format.js';
import type { HeapRecord } from './record.js';

/** The compiled modules the page runs, in the order they must appear. */
const SCRIPT_MODULES = ['../heap/errors.js', '../debug/format.js', './model.js', './column.js', './page.js'];

/** A compiled module's text as part of one script: no imports, no exports, no source map line. */
function inline(path: string): string {
  const text = readFileSync(new URL(path, import.meta.url), 'utf8');
  return text
    .replace(/^import [^;]*;\s*$/gm, '')
    .replace(/^export \{[^}]*\};?\s*$/gm, '')
    .replace(/^export (default )?/gm, '')
    .replace(/^\/\/# source[M]appingURL=.*$/gm, '');
}

const packed = (bytes: Uint8Array): string => gzipSync(bytes, { level: 9 }).toString('base64');

const STYLE = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #1b1b1b; background: #fff; }
body { margin: 12px 16px; }
h1 { font-size: 18px; margin: 0 0 8px; }
h2 { font-size: 15px; margin: 8px 0 4px; }
.controls { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin-bottom: 6px; }
.controls button { font: inherit; min-width: 36px; padding: 3px 8px; border: 1px solid #888; border-radius: 4px; background: #f6f6f6; cursor: pointer; }
.controls button:focus-visible, #cursor:focus-visible, .map:focus-visible { outline: 3px solid #1a73e8; outline-offset: 2px; }
#op { width: 7em; }
.op-text { font-family: ui-monospace, monospace; }
#timeline { display: block; width: 100%; cursor: ew-resize; border: 1px solid #ccc; }
#cursor { width: 100%; margin: 4px 0; }
.legend { margin: 2px 0 8px; color: #333; }
.key { display: inline-block; width: 14px; height: 12px; vertical-align: -2px; border: 1px solid #666; }
.key.used { background: linear-gradient(90deg, #173a6b 30%, #2f6fc4 30%); }
.key.free { background: repeating-linear-gradient(135deg, #f2f2f2 0 3px, #9a9a9a 3px 4px); }
.key.cached { background: radial-gradient(#8a6510 30%, #f0c05a 35%); background-size: 6px 6px; }
.key.current { border: 2px solid #d62f2f; }
.key.payload { background: #9fd49f; }
.columns { display: grid; gap: 16px; }
.column { min-width: 0; }
.describe { font-family: ui-monospace, monospace; min-height: 2.8em; margin: 4px 0; }
.summary { color: #444; margin: 2px 0 6px; }
.map { display: block; border: 1px solid #ddd; }
.freelist { font-family: ui-monospace, monospace; font-size: 12px; max-height: 12em; overflow: auto; margin: 4px 0; padding-left: 3.5em; }
.print-memory { font-size: 12px; max-height: 24em; overflow: auto; background: #fafafa; border: 1px solid #ddd; padding: 6px; }
table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 12px; }
td, th { padding: 1px 8px; text-align: left; }
tr.current { outline: 2px solid #d62f2f; }
#tooltip { position: absolute; white-space: pre; background: #222; color: #fff; padding: 4px 8px; border-radius: 4px; font: 12px/1.4 ui-monospace, monospace; pointer-events: none; }
`;

/** The page for `trace` and the heaps recorded over it. */
export function viewPage(trace: Trace, records: readonly HeapRecord[]): string {
  const data = {
    trace: {
      name: trace.name,
      ops: trace.kinds.length,
      kinds: packed(trace.kinds),
      ids: packed(new Uint8Array(trace.ids.buffer, trace.ids.byteOffset, trace.ids.byteLength)),
      sizes: packed(new Uint8Array(trace.sizes.buffer, trace.sizes.byteOffset, trace.sizes.byteLength)),
      peak: peakPayload(trace).at,
    },
    columns: records.map((r) => ({ label: r.label, preset: r.preset, algorithm: r.algorithm, events: packed(r.events), failed: r.failed })),
  };
  const title = `${trace.name}: ${records.map((r) => r.label).join(' | ')} · ffi-heap view`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main id="view"><p>Reading the record…</p></main>
<script type="application/json" id="view-data">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
<script type="module">
${SCRIPT_MODULES.map(inline).join('\n')}
</script>
</body>
</html>
`;
}
