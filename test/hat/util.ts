/** Shared fixtures of the HAT tests: small configs, randomised models, byte helpers. */
import { makeHATConfig, type HATConfig } from '../../src/models/hat/config.js';
import { HATModel } from '../../src/models/hat/model.js';
import { Rng } from '../helpers/numeric.js';

export interface TestConfigOptions {
  window?: number;
  crossEveryLayer?: boolean;
  /** grouped-query attention in the byte modules and cross-attentions (kv heads = 1) */
  gqa?: boolean;
  encoderLayers?: number;
  decoderLayers?: number;
  backboneLayers?: number;
}

/** A very small HAT (byte width 16, 2 heads of 8; backbone width 24, 2 heads of 12). */
export function testConfig(o: TestConfigOptions = {}): HATConfig {
  const cfg = makeHATConfig({
    byteHidden: 16,
    byteHeads: 2,
    byteKvHeads: o.gqa === false ? 2 : 1,
    byteIntermediate: 24,
    encoderLayers: o.encoderLayers ?? 1,
    decoderLayers: o.decoderLayers ?? 2,
    backboneHidden: 24,
    backboneHeads: 2,
    backboneKvHeads: 1,
    backboneIntermediate: 32,
    backboneLayers: o.backboneLayers ?? 2,
    slidingWindow: o.window ?? 6,
    ropeTheta: 100,
    backboneRopeTheta: 50,
  });
  cfg.decoder_config.cross_attn_every_layer = o.crossEveryLayer ?? true;
  return cfg;
}

/**
 * A model with every parameter drawn at random (norm weights around 1, others uniform in
 * [-scale, scale]), so that no path is degenerate and logits are far from ties.
 */
export function randomModel(cfg: HATConfig, seed: number, scale = 0.35): HATModel {
  const m = new HATModel(cfg, { seed });
  const r = new Rng(seed * 7919 + 1);
  for (const [n, t] of m.store.entries()) {
    const d = t.data as Float32Array;
    const isNorm = /norm\.weight$|layernorm\.weight$|layer_norm\.weight$/.test(n);
    for (let i = 0; i < d.length; i++) d[i] = isNorm ? 1 + r.uniform(-0.3, 0.3) : r.uniform(-scale, scale);
  }
  return m;
}

const enc = new TextEncoder();

export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** Words by a simple causal rule (a stand-in splitter for tests): a space starts a new word. */
export function spaceWords(s: string): Uint8Array[] {
  return s
    .split(/(?= )/)
    .filter((w) => w.length > 0)
    .map((w) => enc.encode(w));
}

export function wordLens(words: readonly ArrayLike<number>[]): number[] {
  return words.map((w) => w.length);
}

export function concatBytes(words: readonly ArrayLike<number>[]): number[] {
  const out: number[] = [];
  for (const w of words) for (let i = 0; i < w.length; i++) out.push(w[i]);
  return out;
}

/** Bytes of one UTF-8 unit starting at i (a whole character, or 1 for an invalid/incomplete byte). */
function unitLen(b: Uint8Array, i: number): number {
  const c = b[i];
  const need = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 1;
  if (i + need > b.length) return 1;
  for (let k = 1; k < need; k++) if ((b[i + k] & 0xc0) !== 0x80) return 1;
  return need;
}

/** Start of an unfinished (valid so far) multi-byte character at the end, or -1. */
function openTail(b: Uint8Array): number {
  for (let k = 1; k <= 3 && k <= b.length; k++) {
    const c = b[b.length - k];
    if ((c & 0xc0) === 0x80) continue;
    const need = c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 1;
    return need > k ? b.length - k : -1;
  }
  return -1;
}

/**
 * A small causal stand-in for the HAT splitter (tests of generation do not depend on the real
 * rules): a word starts at every space, and every non-ASCII character or invalid byte is a word
 * of its own; words are chunked at maxWordSize; special ids are one-byte words.
 */
export class TestSplitter {
  constructor(
    readonly maxWordSize = 12,
    readonly specials: Record<string, number> = { '<|eot_id|>': 192 },
  ) {}

  splitBytes(b: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    let prevAscii = true;
    for (let i = 0; i < b.length; ) {
      const n = unitLen(b, i);
      const ascii = n === 1 && b[i] < 0x80;
      const special = Object.values(this.specials).includes(b[i]);
      const boundary = i > start && (b[i] === 0x20 || !ascii || !prevAscii || special || i - start + n > this.maxWordSize);
      if (boundary) {
        out.push(b.subarray(start, i));
        start = i;
      }
      prevAscii = ascii && !special;
      i += n;
    }
    if (b.length > start) out.push(b.subarray(start));
    return out;
  }

  encode(text: string): Uint8Array[] {
    const out: Uint8Array[] = [];
    const names = Object.keys(this.specials);
    let rest = text;
    while (rest.length > 0) {
      let at = -1;
      let name = '';
      for (const nm of names) {
        const k = rest.indexOf(nm);
        if (k >= 0 && (at < 0 || k < at)) {
          at = k;
          name = nm;
        }
      }
      if (at < 0) {
        out.push(...this.splitBytes(enc.encode(rest)));
        break;
      }
      if (at > 0) out.push(...this.splitBytes(enc.encode(rest.slice(0, at))));
      out.push(Uint8Array.of(this.specials[name]));
      rest = rest.slice(at + name.length);
    }
    return out;
  }

  decode(bytes: Uint8Array | readonly number[]): string {
    const parts: number[] = [];
    const byId = new Map(Object.entries(this.specials).map(([k, v]) => [v, enc.encode(k)]));
    for (const b of bytes) {
      const s = byId.get(b);
      if (s) parts.push(...s);
      else parts.push(b);
    }
    return new TextDecoder().decode(Uint8Array.from(parts));
  }

  appendByte(word: Uint8Array | readonly number[], byte: number): { complete: boolean; words: Uint8Array[] } {
    const joined = new Uint8Array(word.length + 1);
    joined.set(word);
    joined[word.length] = byte;
    if (word.length === 0) return { complete: false, words: [joined] };
    if (openTail(joined) >= 0 && joined.length <= this.maxWordSize) return { complete: false, words: [joined] };
    const words = this.splitBytes(joined);
    return { complete: words.length > 1, words };
  }
}
