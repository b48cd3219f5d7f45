/**
 * The few Node globals that src/ touches on the paths the page runs, for the Web Worker:
 * `process` (env, stderr, hrtime), `setImmediate` (streaming generation yields with it) and a
 * minimal `Buffer` (the HAT splitter searches special-token strings with Buffer#indexOf; the
 * safetensors parser measures UTF-8 lengths with Buffer.byteLength). Imported first by the worker.
 */
const g = globalThis as Record<string, unknown>;
const utf8 = new TextEncoder();

/** A byte array whose indexOf also finds byte sequences, as Node's Buffer#indexOf. */
class Bytes extends Uint8Array {
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

const MiniBuffer = {
  /** Buffer.from(string) | Buffer.from(bytes) (a copy) | Buffer.from(arrayBuffer, offset, length) (a view) */
  from(x: string | ArrayLike<number> | ArrayBuffer, offset?: number, length?: number): Bytes {
    if (typeof x === 'string') return new Bytes(utf8.encode(x));
    if (x instanceof ArrayBuffer) return new Bytes(x, offset ?? 0, length);
    return new Bytes(x);
  },
  byteLength(s: string): number {
    return utf8.encode(s).length;
  },
};

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
