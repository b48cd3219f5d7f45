/**
 * The HAT training batch of the step experiments (hat_train_ab, attention_kernel): the preset's
 * B x T rows of bench/synthetic_text.ts's words, split and packed as bench/hat.ts does. The modules
 * come from the build being measured (each root's dist/), so the batch is made by that build's code.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HATConfig } from '../src/models/hat/config.js';
import type { HATBatch } from '../src/models/hat/model.js';
import { syntheticWords } from '../bench/synthetic_text.js';

export type HatTrainModule = Pick<typeof import('../src/models/hat/train.js'), 'hatBatch'>;

/**
 * `hatBatch` from the build rooted at `root`: src/models/hat/train.js, or for builds older than
 * that module (it lived in src/cli/commands/train.js) from there, so A/B runs reach old roots.
 */
export async function importHatTrain(root: string): Promise<HatTrainModule> {
  const now = nodePath.join(root, 'dist', 'src', 'models', 'hat', 'train.js');
  const file = fs.existsSync(now) ? now : nodePath.join(root, 'dist', 'src', 'cli', 'commands', 'train.js');
  return (await import(pathToFileURL(file).href)) as HatTrainModule;
}

export interface BatchModules {
  nn: Pick<typeof import('../src/nn/index.js'), 'Rng'>;
  io: Pick<typeof import('../src/io/index.js'), 'BytePacker'>;
  splitm: Pick<typeof import('../src/models/hat/splitter.js'), 'splitBytes'>;
  trainm: HatTrainModule;
}

const SHAPES: Record<string, { B: number; T: number }> = { tiny: { B: 8, T: 512 }, small: { B: 4, T: 512 } };

/** The preset's batch shape and its first batch (text from Rng seed 3). */
export function presetBatch(m: BatchModules, cfg: HATConfig, preset: string): { B: number; T: number; batch: HATBatch } {
  const sh = SHAPES[preset];
  if (!sh) throw new Error(`preset must be one of ${Object.keys(SHAPES).join(', ')}, got "${preset}"`);
  const text = syntheticWords(new m.nn.Rng(3), sh.B * sh.T * 2);
  const packer = new m.io.BytePacker([{ source: 'synthetic', bytes: text }], { seqBytes: sh.T, split: (b) => m.splitm.splitBytes(b, { maxWordSize: cfg.max_word_size }).map((w) => w.length), eos: null, shuffle: false });
  return { ...sh, batch: m.trainm.hatBatch(packer.next(sh.B)) };
}
