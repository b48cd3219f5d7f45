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
