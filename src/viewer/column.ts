/// <reference lib="dom" />
// The viewer page's columns: one heap each (its events, its checkpoints, the model at the cursor,
// and its map, description, free list, text alternative and print_memory), with the trace's
// operations they share (Ops) and the page's small helpers. Inlined into the page by ./html.ts
// before ./page.ts, which lays the columns out and moves them with one cursor.

import { formatMemory } from '../debug/format.js';
import { hex } from '../heap/errors.js';
import { EventReader, HeapModel, STATE_CACHED, STATE_FREE, STATE_USED, type ModelRegion } from './model.js';

/** The data ./html.ts embeds: the trace's operations and each heap's events, gzipped and in base64. */
export interface PageData {
  trace: { name: string; ops: number; kinds: string; ids: string; sizes: string; peak: number };
  columns: { label: string; preset: string; algorithm: string | null; events: string; failed: number }[];
}

/** A block as the map drew it: its bytes and state, and its first box on the canvas (CSS pixels). */
export interface Drawn { address: number; size: number; state: 'used' | 'free' | 'cached'; x: number; y: number; w: number; h: number }

export const STATE_NAMES = ['used', 'free', 'cached'] as const;
export const COLOURS = { used: '#2f6fc4', header: '#173a6b', free: '#f2f2f2', freeLine: '#9a9a9a', cached: '#f0c05a', cachedLine: '#8a6510', current: '#d62f2f' };
const ROW_H = 14;
const ROW_GAP = 2;
const BAND_GAP = 8;
/** Rows of the map at the least detail: the whole heap on about one screen. */
export const FIT_ROWS = 160;
/** The tallest map drawn, in device pixels (a canvas can be at most 32,767 high). */
const MAX_CANVAS = 30_000;
const MIN_BOX = 2;
/** At most this many operations are read between checkpoints. */
const CHECKPOINT_EVERY_MIN = 512;
const CHECKPOINTS = 64;

export async function gunzip(base64: string): Promise<Uint8Array> {
  const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export const bytesText = (n: number): string =>
  n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== '') e.textContent = text;
  return e;
}

/** The trace's operations, shared by every column. */
export class Ops {
  readonly kinds: Uint8Array;
  readonly ids: Uint32Array;
  readonly sizes: Float64Array;
  /** The operation before each on the same id, or -1. */
  readonly prev: Int32Array;
  /** Live payload after each operation. */
  readonly payload: Float64Array;
  constructor(kinds: Uint8Array, ids: Uint32Array, sizes: Float64Array) {
    this.kinds = kinds;
    this.ids = ids;
    this.sizes = sizes;
    const n = kinds.length;
    this.prev = new Int32Array(n);
    this.payload = new Float64Array(n);
    const last = new Map<number, number>();
    let live = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      const before = last.get(id) ?? -1;
      this.prev[i] = before;
      if (before >= 0 && kinds[before] !== 2) live -= sizes[before]!;
      if (kinds[i] !== 2) live += sizes[i]!;
      this.payload[i] = live;
      last.set(id, i);
    }
  }

  text(i: number): string {
    const k = this.kinds[i]!;
    return k === 2 ? `f ${this.ids[i]}` : `${k === 0 ? 'a' : 'r'} ${this.ids[i]} ${this.sizes[i]}`;
  }
}

/** One heap: its events, checkpoints, the model at the cursor, and its part of the page. */
export class Column {
  readonly label: string;
  readonly preset: string;
  readonly ops: Ops;
  readonly reader: EventReader;
  readonly results: Float64Array;
  readonly mapped: Float64Array;
  private readonly checkpoints: { op: number; model: HeapModel; pos: number; last: number }[] = [];
  /** The model after operation `at` (-1: before the first). */
  model = new HeapModel();
  at = -1;
  /** What op `at` did, in words, and the block it touched. */
  description = '';
  current = -1;
  drawn: Drawn[] = [];
  private giverOf = new Map<number, number>();
  private giversAt = -2;
  private bytesPerRow = 1;
  private bands: { address: number; end: number; y: number }[] = [];
  readonly root: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  readonly describe: HTMLElement;
  readonly summary: HTMLElement;
  readonly freeList: HTMLElement;
  readonly text: HTMLElement;
  readonly printMemory: HTMLElement | null;

  constructor(data: PageData['columns'][number], events: Uint8Array, ops: Ops, index: number) {
    this.label = data.label;
    this.preset = data.preset;
    this.ops = ops;
    this.reader = new EventReader(events);
    const n = ops.kinds.length;
    this.results = new Float64Array(n);
    this.mapped = new Float64Array(n);
    const every = Math.max(CHECKPOINT_EVERY_MIN, Math.ceil(n / CHECKPOINTS));
    const m = new HeapModel();
    this.checkpoints.push({ op: -1, model: m.clone(), pos: 0, last: 0 });
    for (let i = 0; i < n; i++) {
      this.reader.applyOp(m);
      this.results[i] = m.result;
      this.mapped[i] = m.mapped;
      if ((i + 1) % every === 0) {
        const [pos, last] = this.reader.mark();
        this.checkpoints.push({ op: i, model: m.clone(), pos, last });
      }
    }
    // The cursor starts before the first operation.
    this.reader.seek(0, 0);
    this.root = el('section', { class: 'column', 'data-column': String(index), 'aria-label': this.label });
    this.root.append(el('h2', {}, this.label));
    this.describe = el('p', { class: 'describe', 'aria-live': 'polite' });
    this.summary = el('p', { class: 'summary' });
    this.canvas = el('canvas', { class: 'map', role: 'img', tabindex: '0' });
    this.text = el('details', { class: 'map-text' });
    this.freeList = el('ol', { class: 'freelist' });
    const lists = el('details', { class: 'lists', open: '' });
    lists.append(el('summary', {}, 'Free list, in its order'), this.freeList);
    this.root.append(this.describe, this.summary, this.canvas, this.text, lists);
    this.printMemory = null;
    if (this.preset === 'classic') {
      const details = el('details', { class: 'print' });
      this.printMemory = el('pre', { class: 'print-memory' });
      details.append(el('summary', {}, 'print_memory()'), this.printMemory);
      this.root.append(details);
    }
  }

  /** The address op `i`'s id held before op `i` (0 if none). */
  pointerBefore(i: number): number {
    const p = this.ops.prev[i]!;
    return p < 0 || this.ops.kinds[p] === 2 ? 0 : this.results[p]!;
  }

  /** Makes `model` the heap after operation `target`, from the nearest checkpoint or by stepping on. */
  private reach(target: number): void {
    if (target < this.at || target - this.at > 2 * CHECKPOINT_EVERY_MIN) {
      let c = this.checkpoints[0]!;
      for (const k of this.checkpoints) if (k.op <= target) c = k;
      if (!(this.at <= target && this.at >= c.op)) {
        this.model = c.model.clone();
        this.at = c.op;
        this.reader.seek(c.pos, c.last);
      }
    }
    while (this.at < target) {
      this.reader.applyOp(this.model);
      this.at++;
    }
  }

  /** Brings the column to operation `i` and describes what it did. */
  go(i: number): void {
    if (i < 0) {
      this.reach(-1);
      this.description = 'Before the first operation: the heap holds nothing.';
      this.current = -1;
      return;
    }
    this.reach(i - 1);
    const kind = this.ops.kinds[i]!;
    const p = kind === 0 ? 0 : this.pointerBefore(i);
    const q = this.results[i]!;
    const before = this.blockFacts(p);
    const target = q !== 0 ? this.blockFacts(q) : null;
    const fit = this.preset === 'classic' ? this.label.replace(/^classic, /, '') : 'the fast preset';
    this.reach(i);
    const after = q !== 0 ? this.blockFacts(q) : p !== 0 ? this.blockFacts(p) : null;
    this.current = after !== null ? after.address : -1;
    const op = this.ops.text(i);
    if (kind !== 2 && q === 0) {
      this.description = `${op}: out of memory; the heap is unchanged.`;
    } else if (kind === 2) {
      const merged = after === null || after.state === STATE_USED ? '' :
        after.address < (before?.address ?? 0) && after.address + after.size > (before?.address ?? 0) + (before?.size ?? 0) ? ', merged with the free blocks on both sides' :
          after.address < (before?.address ?? 0) ? ', merged with the free block before it' :
            after.size > (before?.size ?? 0) ? ', merged with the free block after it' : '';
      const cached = after?.state === STATE_CACHED ? ' kept whole in a cache for a request of its size' : after === null ? ' (its memory given back)' : '';
      this.description = `${op}: frees the ${before?.size ?? '?'}-byte block at ${hex(before?.address ?? p)}${cached}${merged}.`;
    } else {
      const size = after?.size ?? 0;
      let how: string;
      if (kind === 1 && p === q) how = `grows or shrinks the block in place at ${hex(after?.address ?? q)} to ${size} bytes`;
      else if (target === null) how = `takes ${size} bytes from new memory at ${hex(after?.address ?? q)}`;
      else if (target.state === STATE_USED) how = `places ${size} bytes at ${hex(after?.address ?? q)}`;
      else if (target.size === size && target.address === after?.address) how = `takes the ${target.size}-byte ${STATE_NAMES[target.state]} block at ${hex(target.address)} whole`;
      else how = `splits the ${target.size}-byte ${STATE_NAMES[target.state]} block at ${hex(target.address)}: ${size} bytes used`;
      const moved = kind === 1 && p !== q && p !== 0 ? `, moving it from ${hex(p)}` : '';
      this.description = `${op}: ${fit} ${how}${moved}.`;
    }
  }

  /** The block holding `address` in the model now: its start, size and state; null if none. */
  blockFacts(address: number): { address: number; size: number; state: number } | null {
    if (address === 0) return null;
    const ri = this.model.regionIndex(address);
    if (ri < 0) return null;
    const r = this.model.regions[ri]!;
    const b = r.blockAt(address);
    return b < 0 ? null : { address: r.addrs[b]!, size: r.sizes[b]!, state: r.states[b]! };
  }

  /**
   * The operation that gave each live block at the cursor, by its data address: the last one to
   * return that address (a block freed since then is no longer live, and one made at the same
   * address later was given by a later operation). Worked out once for each cursor position.
   */
  private givers(): Map<number, number> {
    if (this.giversAt === this.at) return this.giverOf;
    const map = new Map<number, number>();
    for (let i = this.at; i >= 0; i--) {
      const r = this.results[i]!;
      if (r !== 0 && this.ops.kinds[i] !== 2 && !map.has(r)) map.set(r, i);
    }
    this.giverOf = map;
    this.giversAt = this.at;
    return map;
  }

  /** The operation that gave the block in use whose data starts at `data`, at the cursor; -1 if none. */
  giver(data: number): number {
    return this.givers().get(data) ?? -1;
  }

  /** Draws the map (in about `rows` rows), the free list, print_memory and the text alternative. */
  draw(width: number, rows: number): void {
    const m = this.model;
    const regions = m.regions;
    // Bands: runs of regions that touch, each drawn from a new row.
    const bands: { address: number; end: number }[] = [];
    for (const r of regions) {
      const last = bands[bands.length - 1];
      if (last !== undefined && last.end === r.address) last.end = r.address + r.size;
      else bands.push({ address: r.address, end: r.address + r.size });
    }
    const total = bands.reduce((s, b) => s + (b.end - b.address), 0);
    let perRow = 64;
    const rowsFor = (per: number): number => bands.reduce((s, b) => s + Math.ceil((b.end - b.address) / per), 0);
    // Coarser until the rows fit, or until each band is one row (many regions apart).
    while (rowsFor(perRow) > rows && rowsFor(perRow) > bands.length && perRow < 2 ** 50) perRow *= 2;
    this.bytesPerRow = perRow;
    const dpr = window.devicePixelRatio || 1;
    let y = 4;
    let hidden = 0;
    this.bands = [];
    for (const b of bands) {
      const h = Math.ceil((b.end - b.address) / perRow) * (ROW_H + ROW_GAP) + BAND_GAP;
      if ((y + h) * dpr > MAX_CANVAS) {
        hidden++;
        continue;
      }
      this.bands.push({ address: b.address, end: b.end, y });
      y += h;
    }
    const height = Math.max(y, 24);
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const g = this.canvas.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const free = hatch(g, COLOURS.free, COLOURS.freeLine, false);
    const cached = hatch(g, COLOURS.cached, COLOURS.cachedLine, true);
    const drawn: Drawn[] = [];
    const scale = width / perRow;
    let currentBox: Drawn | null = null;
    for (const r of regions) {
      const band = this.bandOf(r.address);
      if (band === null) continue;
      for (let k = 0; k < r.addrs.length; k++) {
        const address = r.addrs[k]!;
        const size = r.sizes[k]!;
        const state = r.states[k]!;
        const o = address - band.address;
        const row = Math.floor(o / perRow);
        const box: Drawn = { address, size, state: STATE_NAMES[state as 0 | 1 | 2], x: (o % perRow) * scale, y: band.y + row * (ROW_H + ROW_GAP), w: 0, h: ROW_H };
        box.w = Math.max(MIN_BOX, Math.min(size, perRow - (o % perRow)) * scale);
        g.fillStyle = state === STATE_USED ? COLOURS.used : state === STATE_FREE ? free : cached;
        // A block past the row's end goes on in the rows below.
        for (let left = size, at = o; left > 0;) {
          const inRow = Math.min(left, perRow - (at % perRow));
          const x = (at % perRow) * scale;
          const yy = band.y + Math.floor(at / perRow) * (ROW_H + ROW_GAP);
          g.fillRect(x, yy, Math.max(MIN_BOX, inRow * scale) - (inRow * scale > 3 ? 1 : 0), ROW_H);
          left -= inRow;
          at += inRow;
        }
        if (r.header > 0 && state === STATE_USED) {
          g.fillStyle = COLOURS.header;
          g.fillRect(box.x, box.y, Math.max(1, Math.min(r.header * scale, box.w / 3)), ROW_H);
        }
        drawn.push(box);
        if (address === this.current) currentBox = box;
      }
    }
    if (currentBox !== null) {
      g.strokeStyle = COLOURS.current;
      g.lineWidth = 2;
      g.strokeRect(currentBox.x - 1, currentBox.y - 1, currentBox.w + 2, currentBox.h + 2);
    }
    this.drawn = drawn;
    const usedBlocks = m.used;
    const summary = `${this.label} after operation ${this.at + 1} of ${this.ops.kinds.length}: ${regions.length} region${regions.length === 1 ? '' : 's'} ` +
      `(${bytesText(m.mapped)} held, ${bytesText(total)} drawn at ${bytesText(perRow)} a row), ${m.blocks} blocks: ${usedBlocks} used ` +
      `(${bytesText(m.usedBytes)}), ${m.blocks - usedBlocks - m.cached} free, ${m.cached} cached.` +
      (hidden > 0 ? ` ${hidden} runs of regions past the map's greatest height are not drawn.` : '');
    this.summary.textContent = summary;
    this.canvas.setAttribute('aria-label', summary);
    this.describe.textContent = this.description;
    this.drawFreeList();
    this.drawText();
    if (this.printMemory !== null) this.printMemory.textContent = formatMemory(this.snapshot());
  }

  /** The band drawn for `address`; null for a band past the map's greatest height. */
  private bandOf(address: number): { address: number; end: number; y: number } | null {
    for (const b of this.bands) if (address >= b.address && address < b.end) return b;
    return null;
  }

  /** The block under canvas point (x, y), in CSS pixels. */
  blockUnder(x: number, y: number): { region: ModelRegion; index: number } | null {
    const per = this.bytesPerRow;
    const width = this.canvas.clientWidth;
    for (const b of this.bands) {
      const rows = Math.ceil((b.end - b.address) / per);
      if (y < b.y || y >= b.y + rows * (ROW_H + ROW_GAP)) continue;
      const row = Math.floor((y - b.y) / (ROW_H + ROW_GAP));
      const address = b.address + row * per + Math.floor((x / width) * per);
      const ri = this.model.regionIndex(address);
      if (ri < 0) return null;
      const region = this.model.regions[ri]!;
      // A block drawn wider than its bytes: the last one that starts at or before the point.
      let index = region.blockAt(address);
      if (index < 0) index = region.lowerBound(address + 1) - 1;
      return index < 0 ? null : { region, index };
    }
    return null;
  }

  /** What hovering a block shows. */
  hoverText(region: ModelRegion, index: number): string {
    const address = region.addrs[index]!;
    const size = region.sizes[index]!;
    const state = region.states[index]!;
    const data = address + region.header;
    const op = state === STATE_USED ? this.giver(data) : -1;
    const id = op >= 0 ? this.ops.ids[op]! : -1;
    const name = this.model.names.get(address) ?? '';
    const lines = [
      `${STATE_NAMES[state as 0 | 1 | 2]} block, ${size} bytes${id >= 0 ? `, trace id ${id}` : ''}${name !== '' ? `, named ${JSON.stringify(name)}` : ''}`,
      region.header > 0 ? `header ${hex(address)} (${region.header} bytes), data ${hex(data)}` : `data ${hex(data)} (no header: its page says its size)`,
    ];
    return lines.join('\n');
  }

  private drawFreeList(): void {
    const list = this.model.freeList;
    const shown = Math.min(list.length, 300);
    const items: HTMLElement[] = [];
    for (let k = 0; k < shown; k++) {
      const f = this.blockFacts(list[k]!);
      items.push(el('li', {}, `${hex(list[k]!)} ${f === null ? '' : `${f.size} B${f.state === STATE_CACHED ? ' (cached)' : ''}`}`));
    }
    if (list.length > shown) items.push(el('li', { class: 'more' }, `… and ${list.length - shown} more`));
    if (list.length === 0) items.push(el('li', { class: 'more' }, 'empty'));
    this.freeList.replaceChildren(...items);
  }

  /** The text alternative: the blocks around the current operation's, as a table. */
  private drawText(): void {
    const rows: HTMLElement[] = [];
    const header = el('tr');
    for (const h of ['address', 'bytes', 'state']) header.append(el('th', { scope: 'col' }, h));
    rows.push(header);
    let shown = 0;
    const ri = this.current >= 0 ? this.model.regionIndex(this.current) : 0;
    const r = this.model.regions[Math.max(ri, 0)];
    if (r !== undefined) {
      const at = Math.max(0, r.lowerBound(this.current) - 20);
      for (let k = at; k < r.addrs.length && shown < 40; k++, shown++) {
        const tr = el('tr', r.addrs[k] === this.current ? { class: 'current' } : {});
        tr.append(el('td', {}, hex(r.addrs[k]!)), el('td', {}, String(r.sizes[k])), el('td', {}, STATE_NAMES[r.states[k] as 0 | 1 | 2]));
        rows.push(tr);
      }
    }
    const table = el('table');
    table.append(...rows);
    this.text.replaceChildren(el('summary', {}, `The map as text: ${shown} blocks around the current one`), table);
  }

  /** The model as heap.snapshot() gives it: regions in the order they were mapped. */
  snapshot(): { regions: { address: number; size: number; blocks: { address: number; size: number; free: boolean; name: string }[] }[]; freeList: number[] } {
    const regions = this.model.regions.slice().sort((a, b) => a.seq - b.seq).map((r) => ({
      address: r.address,
      size: r.size,
      blocks: r.addrs.map((address, k) => ({ address, size: r.sizes[k]!, free: r.states[k] !== STATE_USED, name: this.model.names.get(address) ?? '' })),
    }));
    return { regions, freeList: this.model.freeList.slice() };
  }
}

/** A fill of `base` with diagonal lines (free) or dots (cached), so states differ by more than colour. */
function hatch(g: CanvasRenderingContext2D, base: string, line: string, dots: boolean): CanvasPattern | string {
  const tile = document.createElement('canvas');
  tile.width = 6;
  tile.height = 6;
  const t = tile.getContext('2d');
  if (t === null) return base;
  t.fillStyle = base;
  t.fillRect(0, 0, 6, 6);
  t.fillStyle = line;
  t.strokeStyle = line;
  if (dots) {
    t.fillRect(1, 1, 2, 2);
    t.fillRect(4, 4, 1, 1);
  } else {
    t.beginPath();
    t.moveTo(0, 6);
    t.lineTo(6, 0);
    t.stroke();
  }
  return g.createPattern(tile, 'repeat') ?? base;
}
