/**
 * Test stand-ins for the trainer: a whitespace word splitter and a byte-level Llama LM (vocab
 * 256) wrapped as a `TrainableModel`. They let the data and training code be tested without the
 * HAT model.
 */
import { crossEntropy } from '../../src/tensor/index.js';
import { ParamStore, VarBuilder, init } from '../../src/nn/index.js';
import type { PackedBatch } from '../../src/io/index.js';
import { LlamaLM, type LlamaLMConfig } from '../../src/models/llama/model.js';
import type { TrainableModel } from '../../src/train/index.js';

/** Words = runs that start at a space (the leading space joins the word), plus a first word. */
export function spaceSplit(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let start = 0;
  for (let i = 1; i < bytes.length; i++) {
    if (bytes[i] === 0x20 && bytes[i - 1] !== 0x20) {
      out.push(i - start);
      start = i;
    }
  }
  if (bytes.length > start) out.push(bytes.length - start);
  return out;
}

export class ByteLlama implements TrainableModel {
  readonly store = new ParamStore();
  readonly lm: LlamaLM;
  readonly config: LlamaLMConfig;

  constructor(cfg: Partial<LlamaLMConfig> = {}, seed = 0) {
    this.config = { vocabSize: 256, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 1, ...cfg };
    this.lm = new LlamaLM(new VarBuilder(this.store, { rng: seed, defaultInit: init.normal(0.02) }), this.config);
  }

  loss(b: PackedBatch): { loss: ReturnType<typeof crossEntropy>; bytes: number } {
    const logits = this.lm.forward(b.bytes, b.rows, b.seqBytes, { positions: b.positions, segments: b.segments });
    return { loss: crossEntropy(logits, b.targets), bytes: b.targetCount };
  }
}
