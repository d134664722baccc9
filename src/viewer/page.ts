/// <reference lib="dom" />
// The viewer page's script (made into one self-contained page by ./html.ts, which inlines this
// file's compiled text after ./model.ts's and the print_memory formatter's, their import lines
// taken out). It reads the record embedded in the page, rebuilds each heap at any operation from
// checkpoints it takes as it first reads the events, and draws: the timeline of live payload and
// footprint, and for each heap its map, the current operation described, its free list, and for
// the classic preset print_memory. One cursor drives every column, so they stay together.
//
// For tests and scripts, `window.heapView` exposes the cursor and what each map drew.

import { formatMemory } from '../debug/format.js';
import { hex } from '../heap/errors.js';
import { EventReader, HeapModel, STATE_CACHED, STATE_FREE, STATE_USED, type ModelRegion } from './model.js';

/** The data ./html.ts embeds: the trace's operations and each heap's events, gzipped and in base64. */
interface PageData {
  trace: { name: string; ops: number; kinds: string; ids: string; sizes: string; peak: number };
  columns: { label: string; preset: string; algorithm: string | null; events: string; failed: number }[];
}

/** A block as the map drew it: its bytes and state, and its first box on the canvas (CSS pixels). */
interface Drawn { address: number; size: number; state: 'used' | 'free' | 'cached'; x: number; y: number; w: number; h: number }

const STATE_NAMES = ['used', 'free', 'cached'] as const;
const COLOURS = { used: '#2f6fc4', header: '#173a6b', free: '#f2f2f2', freeLine: '#9a9a9a', cached: '#f0c05a', cachedLine: '#8a6510', current: '#d62f2f' };
const ROW_H = 14;
const ROW_GAP = 2;
const BAND_GAP = 8;
const MAX_ROWS = 160;
const MIN_BOX = 2;
/** At most this many operations are read between checkpoints. */
const CHECKPOINT_EVERY_MIN = 512;
const CHECKPOINTS = 64;

async function gunzip(base64: string): Promise<Uint8Array> {
  const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const bytesText = (n: number): string =>
  n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== '') e.textContent = text;
  return e;
}

/** The trace's operations, shared by every column. */
class Ops {
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
class Column {
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

  /** The trace id of the live block whose data starts at `data`, at the cursor; -1 if none. */
  idOf(data: number): number {
    for (let i = this.at; i >= 0; i--) {
      if (this.results[i] === data && this.ops.kinds[i] !== 2) {
        const id = this.ops.ids[i]!;
        // Live unless a later operation freed or moved it.
        for (let j = i + 1; j <= this.at; j++) if (this.ops.ids[j] === id) return -1;
        return id;
      }
    }
    return -1;
  }

  /** Draws the map, the free list, print_memory and the text alternative. */
  draw(width: number): void {
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
    while (rowsFor(perRow) > MAX_ROWS - bands.length) perRow *= 2;
    this.bytesPerRow = perRow;
    let y = 4;
    this.bands = bands.map((b) => {
      const band = { address: b.address, end: b.end, y };
      y += Math.ceil((b.end - b.address) / perRow) * (ROW_H + ROW_GAP) + BAND_GAP;
      return band;
    });
    const dpr = window.devicePixelRatio || 1;
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
      `(${bytesText(m.usedBytes)}), ${m.blocks - usedBlocks - m.cached} free, ${m.cached} cached.`;
    this.summary.textContent = summary;
    this.canvas.setAttribute('aria-label', summary);
    this.describe.textContent = this.description;
    this.drawFreeList();
    this.drawText();
    if (this.printMemory !== null) this.printMemory.textContent = formatMemory(this.snapshot());
  }

  private bandOf(address: number): { address: number; end: number; y: number } {
    for (const b of this.bands) if (address >= b.address && address < b.end) return b;
    return this.bands[0]!;
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
    const id = state === STATE_USED ? this.idOf(data) : -1;
    const lines = [
      `${STATE_NAMES[state as 0 | 1 | 2]} block, ${size} bytes${id >= 0 ? `, trace id ${id}` : ''}`,
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
      blocks: r.addrs.map((address, k) => ({ address, size: r.sizes[k]!, free: r.states[k] !== STATE_USED, name: '' })),
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

/** The page: the timeline, the controls, the columns, and the one cursor. */
class Viewer {
  readonly ops: Ops;
  readonly columns: Column[];
  readonly name: string;
  readonly peak: number;
  cursor = -1;
  private playing = 0;
  private readonly timeline: HTMLCanvasElement;
  private readonly slider: HTMLInputElement;
  private readonly opInput: HTMLInputElement;
  private readonly opText: HTMLElement;
  private readonly playButton: HTMLButtonElement;
  private readonly speed: HTMLSelectElement;
  private readonly tooltip: HTMLElement;
  private readonly grid: HTMLElement;

  constructor(data: PageData, ops: Ops, columns: Column[]) {
    this.ops = ops;
    this.columns = columns;
    this.name = data.trace.name;
    this.peak = data.trace.peak;
    const n = ops.kinds.length;
    const main = document.getElementById('view')!;
    const controls = el('div', { class: 'controls', role: 'toolbar', 'aria-label': 'Operation' });
    const button = (id: string, label: string, text: string, act: () => void): HTMLButtonElement => {
      const b = el('button', { id, type: 'button', 'aria-label': label, title: label }, text);
      b.addEventListener('click', act);
      controls.append(b);
      return b;
    };
    button('first', 'Before the first operation (Home)', 'start', () => this.go(-1));
    button('back', 'One operation back (←)', '◀ back', () => this.go(this.cursor - 1));
    this.playButton = button('play', 'Play or pause (space)', 'play', () => this.toggle());
    button('forward', 'One operation on (→)', 'on ▶', () => this.go(this.cursor + 1));
    button('last', 'After the last operation (End)', 'end', () => this.go(n - 1));
    button('peak', 'The peak of live payload (P)', 'peak', () => this.go(this.peak));
    this.speed = el('select', { id: 'speed', 'aria-label': 'Operations a frame when playing' });
    for (const s of [1, 10, 100, 1000, 10000]) this.speed.append(el('option', { value: String(s) }, `${s}/frame`));
    this.opInput = el('input', { id: 'op', type: 'number', min: '0', max: String(n), 'aria-label': 'Operations done (0 to the trace’s length)' });
    this.opInput.addEventListener('change', () => this.go(Number(this.opInput.value) - 1));
    this.opText = el('span', { class: 'op-text' });
    controls.append(this.speed, this.opInput, this.opText);
    this.timeline = el('canvas', { id: 'timeline', role: 'img', 'aria-label': 'Live payload and footprint over the trace' });
    this.slider = el('input', { id: 'cursor', type: 'range', min: '0', max: String(n), step: '1', value: '0', 'aria-label': 'Operations done' });
    this.slider.addEventListener('input', () => this.go(Number(this.slider.value) - 1));
    const drag = (e: PointerEvent): void => {
      const rect = this.timeline.getBoundingClientRect();
      this.go(Math.round(((e.clientX - rect.left) / rect.width) * n) - 1);
    };
    this.timeline.addEventListener('pointerdown', (e) => {
      this.timeline.setPointerCapture(e.pointerId);
      drag(e);
    });
    this.timeline.addEventListener('pointermove', (e) => {
      if (this.timeline.hasPointerCapture(e.pointerId)) drag(e);
    });
    const legend = el('p', { class: 'legend' });
    legend.innerHTML = '<span class="key used"></span> used (dark edge: its header) <span class="key free"></span> free ' +
      '<span class="key cached"></span> cached <span class="key current"></span> this operation’s block · timeline: ' +
      '<span class="key payload"></span> live payload, lines: each heap’s footprint';
    this.grid = el('div', { class: 'columns' });
    this.grid.style.gridTemplateColumns = `repeat(${columns.length}, minmax(0, 1fr))`;
    for (const c of columns) {
      this.grid.append(c.root);
      c.canvas.addEventListener('mousemove', (e) => this.hover(c, e));
      c.canvas.addEventListener('mouseleave', () => {
        this.tooltip.hidden = true;
      });
    }
    this.tooltip = el('div', { id: 'tooltip', role: 'tooltip' });
    this.tooltip.hidden = true;
    main.replaceChildren(el('h1', {}, `${this.name}: ${n} operations`), controls, this.timeline, this.slider, legend, this.grid, this.tooltip);
    document.addEventListener('keydown', (e) => this.key(e));
    window.addEventListener('resize', () => this.render());
  }

  private key(e: KeyboardEvent): void {
    const target = e.target as HTMLElement | null;
    if (target !== null && (target.tagName === 'INPUT' && (target as HTMLInputElement).type === 'number' || target.tagName === 'SELECT')) return;
    const big = Math.max(1, Math.round(this.ops.kinds.length / 100));
    const moves: Record<string, () => void> = {
      ArrowLeft: () => this.go(this.cursor - (e.shiftKey ? big : 1)),
      ArrowRight: () => this.go(this.cursor + (e.shiftKey ? big : 1)),
      PageUp: () => this.go(this.cursor - big),
      PageDown: () => this.go(this.cursor + big),
      Home: () => this.go(-1),
      End: () => this.go(this.ops.kinds.length - 1),
      ' ': () => this.toggle(),
      p: () => this.go(this.peak),
    };
    const move = moves[e.key];
    if (move === undefined) return;
    e.preventDefault();
    move();
  }

  private hover(c: Column, e: MouseEvent): void {
    const rect = c.canvas.getBoundingClientRect();
    const hit = c.blockUnder(e.clientX - rect.left, e.clientY - rect.top);
    if (hit === null) {
      this.tooltip.hidden = true;
      return;
    }
    this.tooltip.textContent = c.hoverText(hit.region, hit.index);
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${e.pageX + 12}px`;
    this.tooltip.style.top = `${e.pageY + 12}px`;
  }

  toggle(): void {
    if (this.playing !== 0) {
      cancelAnimationFrame(this.playing);
      this.playing = 0;
      this.playButton.textContent = 'play';
      return;
    }
    this.playButton.textContent = 'pause';
    const step = (): void => {
      const next = Math.min(this.ops.kinds.length - 1, this.cursor + Number(this.speed.value));
      this.go(next);
      if (next >= this.ops.kinds.length - 1) {
        this.playing = 0;
        this.playButton.textContent = 'play';
        return;
      }
      this.playing = requestAnimationFrame(step);
    };
    this.playing = requestAnimationFrame(step);
  }

  /** Moves every column to operation `i` (-1: before the first) and redraws. */
  go(i: number): void {
    const n = this.ops.kinds.length;
    this.cursor = Math.max(-1, Math.min(n - 1, Math.round(i)));
    for (const c of this.columns) c.go(this.cursor);
    this.render();
  }

  render(): void {
    const n = this.ops.kinds.length;
    this.slider.value = String(this.cursor + 1);
    this.opInput.value = String(this.cursor + 1);
    this.opText.textContent = this.cursor < 0 ? `0 of ${n} done` : `${this.cursor + 1} of ${n} done: ${this.ops.text(this.cursor)}`;
    this.drawTimeline();
    const width = Math.max(200, Math.floor(this.grid.clientWidth / this.columns.length) - 16);
    for (const c of this.columns) c.draw(width);
  }

  private drawTimeline(): void {
    const width = Math.max(200, document.getElementById('view')!.clientWidth);
    const height = 90;
    const dpr = window.devicePixelRatio || 1;
    const t = this.timeline;
    t.width = Math.round(width * dpr);
    t.height = Math.round(height * dpr);
    t.style.width = `${width}px`;
    t.style.height = `${height}px`;
    const g = t.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const n = this.ops.kinds.length;
    let top = 1;
    for (const c of this.columns) for (let i = 0; i < n; i++) top = Math.max(top, c.mapped[i]!);
    const yOf = (v: number): number => height - 2 - (v / top) * (height - 6);
    // Per pixel column, the most of each series over the operations it covers.
    const series = (values: Float64Array): Float64Array => {
      const out = new Float64Array(width);
      for (let i = 0; i < n; i++) {
        const x = Math.min(width - 1, Math.floor((i / n) * width));
        if (values[i]! > out[x]!) out[x] = values[i]!;
      }
      return out;
    };
    const payload = series(this.ops.payload);
    g.fillStyle = '#9fd49f';
    for (let x = 0; x < width; x++) g.fillRect(x, yOf(payload[x]!), 1, height - yOf(payload[x]!));
    const dashes = [[], [6, 3], [2, 2]];
    this.columns.forEach((c, k) => {
      const s = series(c.mapped);
      g.strokeStyle = ['#1d3f8a', '#8a1d5a', '#6b4a00'][k % 3]!;
      g.setLineDash(dashes[k % 3]!);
      g.lineWidth = 1.5;
      g.beginPath();
      for (let x = 0; x < width; x++) (x === 0 ? g.moveTo(x, yOf(s[x]!)) : g.lineTo(x, yOf(s[x]!)));
      g.stroke();
    });
    g.setLineDash([]);
    const cx = ((this.cursor + 1) / n) * width;
    g.strokeStyle = COLOURS.current;
    g.lineWidth = 2;
    g.beginPath();
    g.moveTo(cx, 0);
    g.lineTo(cx, height);
    g.stroke();
    g.fillStyle = '#222';
    g.font = '11px system-ui, sans-serif';
    g.fillText(`footprint up to ${bytesText(top)}`, 4, 11);
  }
}

async function start(): Promise<void> {
  const data = JSON.parse(document.getElementById('view-data')!.textContent!) as PageData;
  const [kinds, ids, sizes] = await Promise.all([gunzip(data.trace.kinds), gunzip(data.trace.ids), gunzip(data.trace.sizes)]);
  const ops = new Ops(kinds, new Uint32Array(ids.buffer, ids.byteOffset, ids.byteLength / 4), new Float64Array(sizes.buffer, sizes.byteOffset, sizes.byteLength / 8));
  const events = await Promise.all(data.columns.map((c) => gunzip(c.events)));
  const columns = data.columns.map((c, i) => new Column(c, events[i]!, ops, i));
  const viewer = new Viewer(data, ops, columns);
  viewer.go(-1);
  (window as unknown as { heapView: unknown }).heapView = {
    ready: true,
    ops: ops.kinds.length,
    peak: viewer.peak,
    get cursor(): number {
      return viewer.cursor;
    },
    go: (i: number) => viewer.go(i),
    columns: columns.map((c) => ({
      label: c.label,
      at: () => c.at,
      drawn: () => c.drawn.map((d) => ({ ...d })),
      description: () => c.description,
      freeList: () => c.model.freeList.slice(),
      printMemory: () => c.printMemory?.textContent ?? null,
    })),
  };
}

start().catch((error: unknown) => {
  document.getElementById('view')!.textContent = `The viewer could not start: ${String(error)}`;
});
