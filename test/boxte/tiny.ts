import { ParamStore, Rng, VarBuilder } from '../../src/nn/index.js';
import { BoxTE, defaultConfig, type BoxTEConfig } from '../../src/models/boxte/index.js';

/** A tiny model with parameters spread over [-spread, spread] (so points fall inside and outside boxes). */
export function tinyModel(over: Partial<BoxTEConfig> = {}, seed = 1, spread = 1): BoxTE {
  const cfg = defaultConfig({ numEntities: 5, numRelations: 2, numTimes: 3, dim: 3, k: 2, ...over });
  const m = new BoxTE(cfg, new VarBuilder(new ParamStore(), { rng: seed }));
  const rng = new Rng(seed + 100);
  for (const [name, p] of m.store.entries()) {
    const d = p.f32();
    for (let i = 0; i < d.length; i++) d[i] = name === 'relation.alpha' ? rng.uniform(0.5, 1.5) : rng.uniform(-spread, spread);
  }
  return m;
}

