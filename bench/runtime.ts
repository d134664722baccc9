// The runtime a benchmark ran on, for its header. Bun reports a Node version (and a V8 one) of its
// own in process.versions, so it is named first.

const bun = (process.versions as { bun?: string }).bun;

/** Whether this is Bun. */
export const isBun = bun !== undefined;

/** "Bun 1.4.5 (JavaScriptCore)" or "Node 20.20.2 (V8 11.3...)"; `short` leaves out the engine. */
export function runtimeName(short = false): string {
  if (bun !== undefined) return short ? `Bun ${bun}` : `Bun ${bun} (JavaScriptCore)`;
  return short ? `Node ${process.versions.node}` : `Node ${process.versions.node} (V8 ${process.versions.v8})`;
}
