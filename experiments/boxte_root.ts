/**
 * The child side of the BoxTE A/B scripts (boxte_speed_ab, boxte_phases, boxte_small_ab,
 * boxte_epoch_check): the BoxTE modules of the build given by `--root` (its dist/), the KG read
 * from `--data`, and a Trainer with the paper's settings at `--dim` (default 154, k = 2).
 */
import { arg, intArg } from './argv.js';

export interface RootTrainer {
  root: string;
  bx: typeof import('../src/models/boxte/index.js');
  kg: import('../src/io/kg.js').TemporalKG;
  cfg: import('../src/models/boxte/index.js').BoxTEConfig;
  tr: import('../src/models/boxte/index.js').Trainer;
}

export async function rootTrainer(seed: number): Promise<RootTrainer> {
  const root = arg('root', '');
  const io = (await import(`${root}/dist/src/io/kg.js`)) as typeof import('../src/io/kg.js');
  const bx = (await import(`${root}/dist/src/models/boxte/index.js`)) as typeof import('../src/models/boxte/index.js');
  const kg = io.readTemporalKG(arg('data', ''));
  const cfg = bx.defaultConfig({ numEntities: kg.entities.length, numRelations: kg.relations.length, numTimes: kg.numTimes, dim: intArg('dim', 154), k: 2 });
  const tr = new bx.Trainer(kg, cfg, { ...bx.defaultTrainOptions, seed });
  return { root, bx, kg, cfg, tr };
}
