/**
 * Test fixture for the GGUF export: a small random Llama (GQA, llama3 rope scaling with all three
 * frequency bands in use, rows of 64 so Q8_0/Q4_0 apply except where noted) saved as a HF folder
 * in F32, with a byte-level BPE tokenizer.json trained on a few sentences.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { ParamStore, VarBuilder, init } from '../../src/nn/index.js';
import { LlamaLM, saveLlama, saveBpeTokenizer, trainBpe, type LlamaLMConfig } from '../../src/models/llama/index.js';

export const TEXTS = [
  'The quick brown fox jumps over the lazy dog. ',
  'A byte-level tokenizer merges the most frequent pairs of symbols first. ',
  'GGUF files carry the vocabulary, the hyperparameters and the weights in one file. ',
];

export function ggufTmpDir(label: string): string {
  return fs.mkdtempSync(nodePath.join(os.tmpdir(), `tfree-gguf-${label}-`));
}

export interface GgufFixture {
  dir: string;
  model: LlamaLM;
  cfg: LlamaLMConfig;
}

/**
 * intermediate 96 (a multiple of 32) unless `oddFfn`: then 80, so down_proj rows (80) are not a
 * multiple of 32 and take the F16 fallback.
 */
export function writeGgufFixture(dir: string, opts: { seed: number; tied: boolean; oddFfn?: boolean }): GgufFixture {
  const vocab = 300;
  const tok = trainBpe(TEXTS, { vocabSize: vocab - 1, minFrequency: 1, specialTokens: ['<|endoftext|>'] });
  const used = tok.vocab.size + tok.specialTokens.length;
  const cfg: LlamaLMConfig = {
    vocabSize: vocab,
    hiddenSize: 64,
    intermediateSize: opts.oddFfn === true ? 80 : 96,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    ropeTheta: 10000,
    // head_dim 16: wavelengths 6.3 ... 2.0e3; original context 64 puts some below 16, some between, some above 64
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    rmsNormEps: 1e-5,
    tieWordEmbeddings: opts.tied,
    maxPositionEmbeddings: 256,
    bosTokenId: null,
    eosTokenId: used - 1,
  };
  const store = new ParamStore();
  const model = new LlamaLM(new VarBuilder(store, { rng: opts.seed, defaultInit: init.normal(0.2) }), cfg);
  // norms away from 1 so a swapped norm would show
  for (const [name, t] of store.entries()) {
    if (name.endsWith('norm.weight')) {
      const d = t.data as Float32Array;
      for (let i = 0; i < d.length; i++) d[i] = 0.8 + 0.4 * ((i * 37 + name.length) % 11) / 10;
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  saveLlama(model, dir, { dtype: 'F32' });
  saveBpeTokenizer(nodePath.join(dir, 'tokenizer.json'), tok);
  return { dir, model, cfg };
}
