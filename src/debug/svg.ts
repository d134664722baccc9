// A picture of the heap as dependency-free SVG text: each region a band of rows, each block a box
// as wide as its bytes, used and free in different colours, with the block's address, size, state
// and name on hover. Fragmentation shows as a mosaic of small free boxes between used ones.

import { hex } from '../heap/errors.js';
import type { HeapSnapshot } from '../heap/types.js';

/** How `heap.toSVG()` draws: width, title, and how many rows at most. */
export interface SvgOptions {
  /** Drawing width of a row, in pixels: a finite number from 1 to MAX_WIDTH. Default 960. */
  width?: number;
  /** A line of text above the picture. */
  title?: string;
  /**
   * At most this many rows, an integer from 1 to MAX_ROWS; bytes per row grow to fit. Each region
   * takes at least one row, so regions past this many are counted in the heading but not drawn.
   * Default 160.
   */
  maxRows?: number;
}

/** The widest drawing `width` accepted, in pixels. */
export const MAX_WIDTH = 100_000;
/** The largest `maxRows` accepted. */
export const MAX_ROWS = 10_000;
/** At most this many block boxes are drawn; blocks past it are counted in the heading. */
export const MAX_BOXES = 50_000;
/** A box is drawn at least this wide, in pixels, so that a tiny block still shows. */
const MIN_BOX_WIDTH = 0.5;
/** Bytes per row are a power of two from 2^12 (a page) up. */
const MIN_ROW_SHIFT = 12;

const ROW_HEIGHT = 14;
const ROW_GAP = 2;
const REGION_GAP = 8;
const LABEL_WIDTH = 120;
const TOP = 44;
const USED = '#3b7dd8';
const FREE = '#e6e6e6';
const STROKE = '#ffffff';

/** `text` with the characters XML and HTML give meaning to written as entities. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function bytesLabel(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

interface Layout {
  readonly width: number;
  readonly title: string | undefined;
  readonly maxRows: number;
}

function checkOptions(options: unknown): Layout {
  if (options === undefined) return { width: 960, title: undefined, maxRows: 160 };
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`toSVG(options): options must be an object, got ${describe(options)}`);
  }
  const { width = 960, title, maxRows = 160 } = options as Record<string, unknown>;
  if (typeof width !== 'number') throw new TypeError(`toSVG(options): width must be a number, got ${describe(width)}`);
  if (!(width >= 1 && width <= MAX_WIDTH)) {
    throw new RangeError(`toSVG(options): width must be a number of pixels from 1 to ${MAX_WIDTH}, got ${describe(width)}`);
  }
  if (typeof maxRows !== 'number') throw new TypeError(`toSVG(options): maxRows must be a number, got ${describe(maxRows)}`);
  if (!(Number.isInteger(maxRows) && maxRows >= 1 && maxRows <= MAX_ROWS)) {
    throw new RangeError(`toSVG(options): maxRows must be an integer from 1 to ${MAX_ROWS}, got ${describe(maxRows)}`);
  }
  if (title !== undefined && typeof title !== 'string') {
    throw new TypeError(`toSVG(options): title must be a string, got ${describe(title)}`);
  }
  return { width, title, maxRows };
}

/** A byte count from a snapshot as a safe non-negative integer (anything else counts as 0). */
const bytesOf = (n: unknown): number => (typeof n === 'number' && n >= 0 && n <= Number.MAX_SAFE_INTEGER ? Math.floor(n) : 0);

/**
 * The smallest power of two, a page or more, that lays `sizes` out in at most `maxRows` rows of
 * at least one row each. `sizes.length <= maxRows`, so 2^53 (one row each) always fits: the loop
 * is bounded whatever the sizes.
 */
function bytesPerRowFor(sizes: readonly number[], maxRows: number): number {
  for (let shift = MIN_ROW_SHIFT; shift < 53; shift++) {
    const bytesPerRow = 2 ** shift;
    let rows = 0;
    for (const size of sizes) rows += Math.max(1, Math.ceil(size / bytesPerRow));
    if (rows <= maxRows) return bytesPerRow;
  }
  return 2 ** 53;
}

/**
 * Draws a snapshot. Every block becomes one `<g class="block used|free">` holding its boxes, up to
 * MAX_BOXES boxes. Throws a TypeError or RangeError naming `toSVG(options)` for a bad option.
 */
export function toSVG(snapshot: HeapSnapshot, options?: SvgOptions): string {
  const { width, title, maxRows } = checkOptions(options);
  if (typeof snapshot !== 'object' || snapshot === null || !Array.isArray(snapshot.regions)) {
    throw new TypeError(`toSVG(snapshot): expected a heap snapshot ({ regions, freeList }), got ${describe(snapshot)}`);
  }
  const drawn = snapshot.regions.slice(0, maxRows);
  const sizes = drawn.map((r) => bytesOf(r.size));
  const bytesPerRow = bytesPerRowFor(sizes, maxRows);
  const scale = width / bytesPerRow;
  const rowY = (y: number, row: number): number => y + row * (ROW_HEIGHT + ROW_GAP);

  const parts: string[] = [];
  let y = TOP;
  let used = 0;
  let free = 0;
  let boxesLeft = MAX_BOXES;
  let blocksNotDrawn = 0;
  for (const region of snapshot.regions) {
    for (const block of region.blocks) {
      if (block.free) free += bytesOf(block.size);
      else used += bytesOf(block.size);
    }
  }
  drawn.forEach((region, index) => {
    const size = sizes[index]!;
    const rows = Math.max(1, Math.ceil(size / bytesPerRow));
    parts.push(`<text x="4" y="${y + ROW_HEIGHT - 3}" class="label">${hex(bytesOf(region.address))}</text>`);
    for (let row = 0; row < rows; row++) {
      const bytes = Math.min(bytesPerRow, size - row * bytesPerRow);
      parts.push(`<rect class="region" x="${LABEL_WIDTH}" y="${rowY(y, row)}" width="${fmt(bytes * scale)}" height="${ROW_HEIGHT}"/>`);
    }
    for (const block of region.blocks) {
      // Clipped to the region, so a block never takes more boxes than the region has rows.
      let start = Math.min(size, bytesOf(block.address - region.address));
      const end = Math.min(size, start + bytesOf(block.size));
      const boxes = Math.floor(end / bytesPerRow) - Math.floor(start / bytesPerRow) + 1;
      if (boxes > boxesLeft) {
        blocksNotDrawn++;
        continue;
      }
      boxesLeft -= boxes;
      const state = block.free ? 'free' : 'used';
      const tip = `${hex(bytesOf(block.address))}-${hex(bytesOf(block.address) + bytesOf(block.size))} ${bytesOf(block.size)} bytes ${state.toUpperCase()}` +
        (block.name ? ` '${block.name}'` : '');
      let rects = '';
      // A block that crosses a row boundary is drawn as one box per row it touches.
      do {
        const row = Math.floor(start / bytesPerRow);
        const rowEnd = Math.min(end, (row + 1) * bytesPerRow);
        const w = Math.max(MIN_BOX_WIDTH, (rowEnd - start) * scale);
        const x = Math.min(LABEL_WIDTH + (start - row * bytesPerRow) * scale, LABEL_WIDTH + width - w);
        rects += `<rect x="${fmt(x)}" y="${rowY(y, row)}" width="${fmt(w)}" height="${ROW_HEIGHT}"/>`;
        start = rowEnd;
      } while (start < end);
      parts.push(`<g class="block ${state}"><title>${escapeXml(tip)}</title>${rects}</g>`);
    }
    y += rows * (ROW_HEIGHT + ROW_GAP) + REGION_GAP;
  });

  const height = Math.max(y, TOP + ROW_HEIGHT) + 4;
  const totalWidth = LABEL_WIDTH + width + 8;
  const regions = snapshot.regions.length;
  const heading = `${title ? `${title}: ` : ''}${regions} region${regions === 1 ? '' : 's'}` +
    (drawn.length < regions ? ` (the first ${drawn.length} drawn)` : '') +
    `, ${bytesLabel(used)} used, ${bytesLabel(free)} free, ${bytesLabel(bytesPerRow)} a row` +
    (blocksNotDrawn > 0 ? `, ${blocksNotDrawn} block${blocksNotDrawn === 1 ? '' : 's'} not drawn` : '');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${totalWidth}" height="${height}" viewBox="0 0 ${totalWidth} ${height}" font-family="monospace" font-size="11">\n` +
    `<style>.used rect{fill:${USED}}.free rect{fill:${FREE}}.block rect{stroke:${STROKE};stroke-width:0.5}` +
    `.region{fill:#b0b0b0}.label{fill:#333}</style>\n` +
    `<text x="4" y="16" class="label">${escapeXml(heading)}</text>\n` +
    `<rect x="4" y="24" width="10" height="10" fill="${USED}"/><text x="18" y="33" class="label">used</text>` +
    `<rect x="60" y="24" width="10" height="10" fill="${FREE}" stroke="#999" stroke-width="0.5"/><text x="74" y="33" class="label">free</text>` +
    `<text x="120" y="33" class="label">grey: inside a region but no block (the fast preset's pad and sentinel)</text>\n` +
    parts.join('\n') + '\n</svg>\n';
}
