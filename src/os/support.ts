// Where ffi-heap can run. Checked once, when the first heap is made, so that an unsupported
// runtime fails at `new Heap()` with a sentence naming the reason, not later with a crash.

import { libc, nativeView, platformProblem } from './libc.js';

/**
 * Why this runtime cannot give ffi-heap ArrayBuffers over native memory, or undefined if it can.
 * `makeView` is tried on one page of fresh memory: Electron builds with V8's memory cage refuse
 * such buffers, and ffi-heap reads and writes every block through them.
 */
export function viewProblem(makeView: () => void, electron: string | undefined): string | undefined {
  try {
    makeView();
    return undefined;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return electron !== undefined
      ? `this Electron build (${electron}) forbids ArrayBuffers over native memory (its V8 memory cage), and ffi-heap works through them: ${why}`
      : `this runtime cannot make an ArrayBuffer over native memory, and ffi-heap works through them: ${why}`;
  }
}

let checked = false;

/** Throws an Error naming the reason if ffi-heap cannot run here; after one success, free. */
export function assertSupported(): void {
  if (checked) return;
  const platform = platformProblem(process.platform, process.arch);
  if (platform !== undefined) throw new Error(platform);
  const lib = libc();
  const c = lib.constants;
  const page = 4096;
  const address = lib.mmap(0, page, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0);
  if (address === -1 || address <= 0) throw new Error(`ffi-heap: mmap of one page failed (errno ${lib.errno()})`);
  try {
    const problem = viewProblem(() => new Uint8Array(nativeView(address, page))[0], process.versions.electron);
    if (problem !== undefined) throw new Error(problem);
  } finally {
    lib.munmap(address, page);
  }
  checked = true;
}
