// A picture of the heap as dependency-free SVG text: each region a band of rows, each block a box
// as wide as its bytes, used and free in different colours, with the block's address, size, state
// and name on hover. Fragmentation shows as a mosaic of small free boxes between used ones.

import { hex } from '../heap/errors.js';
import type { HeapSnapshot } from '../heap/types.js';

/** How `heap.toSVG()` draws: width, title, and how many rows at most. */
export interface SvgOptions {
  /** Drawing width of a row, in pixels. Default 960. */
  width?: number;
  /** A line of text above the picture. */
  title?: string;
  /** At most this many rows; bytes per row grow to fit. Default 160. */
  maxRows?: number;
}

const ROW_HEIGHT = 14;
const ROW_GAP = 2;
const REGION_GAP = 8;
const LABEL_WIDTH = 120;
const TOP = 44;
const USED = '#3b7dd8';
const FREE = '#e6e6e6';
const STROKE = '#ffffff';

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function bytesLabel(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** Draws a snapshot. Every block becomes one `<g class="block used|free">` holding its boxes. */
export function toSVG(snapshot: HeapSnapshot, options: SvgOptions = {}): string {
  const width = options.width ?? 960;
  const maxRows = options.maxRows ?? 160;
  const rowsFor = (bytesPerRow: number): number =>
    snapshot.regions.reduce((rows, r) => rows + Math.max(1, Math.ceil(r.size / bytesPerRow)), 0);
  let bytesPerRow = 4096;
  while (rowsFor(bytesPerRow) > maxRows) bytesPerRow *= 2;
  const scale = width / bytesPerRow;

  const parts: string[] = [];
  let y = TOP;
  let used = 0;
  let free = 0;
  for (const region of snapshot.regions) {
    const rows = Math.max(1, Math.ceil(region.size / bytesPerRow));
    parts.push(`<text x="4" y="${y + ROW_HEIGHT - 3}" class="label">${hex(region.address)}</text>`);
    for (let row = 0; row < rows; row++) {
      const bytes = Math.min(bytesPerRow, region.size - row * bytesPerRow);
      parts.push(`<rect class="region" x="${LABEL_WIDTH}" y="${y + row * (ROW_HEIGHT + ROW_GAP)}" width="${fmt(bytes * scale)}" height="${ROW_HEIGHT}"/>`);
    }
    for (const block of region.blocks) {
      if (block.free) free += block.size;
      else used += block.size;
      const state = block.free ? 'free' : 'used';
      const tip = `${hex(block.address)}-${hex(block.address + block.size)} ${block.size} bytes ${state.toUpperCase()}` +
        (block.name ? ` '${block.name}'` : '');
      let boxes = '';
      // A block that crosses a row boundary is drawn as one box per row it touches.
      let start = block.address - region.address;
      const end = start + block.size;
      while (start < end) {
        const row = Math.floor(start / bytesPerRow);
        const rowEnd = Math.min(end, (row + 1) * bytesPerRow);
        const x = LABEL_WIDTH + (start - row * bytesPerRow) * scale;
        boxes += `<rect x="${fmt(x)}" y="${y + row * (ROW_HEIGHT + ROW_GAP)}" width="${fmt((rowEnd - start) * scale)}" height="${ROW_HEIGHT}"/>`;
        start = rowEnd;
      }
      parts.push(`<g class="block ${state}"><title>${escapeXml(tip)}</title>${boxes}</g>`);
    }
    y += rows * (ROW_HEIGHT + ROW_GAP) + REGION_GAP;
  }

  const height = Math.max(y, TOP + ROW_HEIGHT) + 4;
  const totalWidth = LABEL_WIDTH + width + 8;
  const regions = snapshot.regions.length;
  const heading = `${options.title ? `${options.title}: ` : ''}${regions} region${regions === 1 ? '' : 's'}, ` +
    `${bytesLabel(used)} used, ${bytesLabel(free)} free, ${bytesLabel(bytesPerRow)} a row`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${totalWidth}" height="${height}" viewBox="0 0 ${totalWidth} ${height}" font-family="monospace" font-size="11">\n` +
    `<style>.used rect{fill:${USED}}.free rect{fill:${FREE}}.block rect{stroke:${STROKE};stroke-width:0.5}` +
    `.region{fill:#b0b0b0}.label{fill:#333}</style>\n` +
    `<text x="4" y="16" class="label">${escapeXml(heading)}</text>\n` +
    `<rect x="4" y="24" width="10" height="10" fill="${USED}"/><text x="18" y="33" class="label">used</text>` +
    `<rect x="60" y="24" width="10" height="10" fill="${FREE}" stroke="#999" stroke-width="0.5"/><text x="74" y="33" class="label">free</text>` +
    `<text x="120" y="33" class="label">grey: inside a region but no block (the fast preset's pad and sentinel)</text>\n` +
    parts.join('\n') + '\n</svg>\n';
}
