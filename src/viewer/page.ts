/// <reference lib="dom" />
// The viewer page's script (made into one self-contained page by ./html.ts, which inlines this
// file's compiled text after ./model.ts's, ./column.ts's and the print_memory formatter's, their
// import lines taken out). It reads the record embedded in the page into one Column a heap
// (./column.ts), lays them side by side under the timeline of live payload and footprint and the
// controls, and moves them all with one cursor, so they stay together.
//
// For tests and scripts, `window.heapView` exposes the cursor and what each map drew.

import { COLOURS, Column, FIT_ROWS, Ops, bytesText, el, gunzip, type PageData } from './column.js';

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
  private readonly detail: HTMLSelectElement;
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
    this.detail = el('select', { id: 'detail', 'aria-label': 'Rows of the heap maps' });
    for (const d of [1, 3, 10]) this.detail.append(el('option', { value: String(d) }, d === 1 ? 'whole heap' : `${d}× rows`));
    this.detail.addEventListener('change', () => this.render());
    controls.append(this.speed, this.detail, this.opInput, this.opText);
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
    for (const c of this.columns) c.draw(width, FIT_ROWS * Number(this.detail.value));
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
  const ops = new Ops(kinds, new Uint32Array(ids.buffer, ids.byteOffset, ids.byteLength / 4),
    new Float64Array(sizes.buffer, sizes.byteOffset, sizes.byteLength / 8));
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
