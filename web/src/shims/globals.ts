/**
 * The few Node globals that src/ touches on the paths the page runs, for the Web Worker:
 * `process` (env, stderr, hrtime), `setImmediate` (streaming generation yields with it) and a
 * minimal `Buffer` (the HAT splitter searches special-token strings with Buffer#indexOf; the
 * safetensors parser measures UTF-8 lengths with Buffer.byteLength). Imported first by the worker.
 */
const g = globalThis as Record<string, unknown>;
const utf8 = new TextEncoder();

class MiniBuffer extends Uint8Array {
  static override from(x: ArrayLike<number> | ArrayBufferLike | string, a?: unknown, b?: unknown): MiniBuffer {
    if (typeof x === 'string') return new MiniBuffer(utf8.encode(x));
    if (x instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && x instanceof SharedArrayBuffer)) {
      return new MiniBuffer(x, typeof a === 'number' ? a : 0, typeof b === 'number' ? b : undefined);
    }
    return new MiniBuffer(x as ArrayLike<number>);
  }

  static byteLength(s: string): number {
    return utf8.encode(s).length;
  }

  /** indexOf for a byte or a byte sequence, as Node's Buffer#indexOf. */
  override indexOf(needle: number | Uint8Array, from = 0): number {
    if (typeof needle === 'number') return super.indexOf(needle, from);
    if (needle.length === 0) return Math.min(from, this.length);
    for (let i = super.indexOf(needle[0], from); i >= 0 && i + needle.length <= this.length; i = super.indexOf(needle[0], i + 1)) {
      let k = 1;
      while (k < needle.length && this[i + k] === needle[k]) k++;
      if (k === needle.length) return i;
    }
    return -1;
  }
}

if (g.Buffer === undefined) g.Buffer = MiniBuffer;
if (g.setImmediate === undefined) {
  // a message-channel turn, not setTimeout(0), which browsers clamp to 4 ms when nested
  const queue: (() => void)[] = [];
  const channel = new MessageChannel();
  channel.port1.onmessage = () => queue.shift()?.();
  g.setImmediate = (fn: () => void) => {
    queue.push(fn);
    channel.port2.postMessage(0);
  };
}
if (g.process === undefined) {
  g.process = {
    env: {},
    pid: 1,
    stderr: { write: (s: string) => console.warn(s) },
    hrtime: { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
  };
}
export {};
