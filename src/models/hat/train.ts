/**
 * HAT training glue: a packed byte batch (src/io's BytePacker) in the HAT model's batch format,
 * and the HAT model as src/train's Trainer sees it. Used by `tfree train`, `tfree convert`,
 * the HAT bench and the training experiments.
 */
import type { PackedBatch } from '../../io/index.js';
import type { TrainableModel } from '../../train/index.js';
import { hatConfigToJSON } from './config.js';
import { saveHATModel } from './checkpoint.js';
import type { HATBatch, HATModel } from './model.js';

/** A packed batch in the HAT model's batch format (padding is not a word there). */
export function hatBatch(b: PackedBatch): HATBatch {
  const cuSeqlens: Int32Array[] = [];
  for (let r = 0; r < b.rows; r++) {
    const w0 = b.rowWords[r];
    let w1 = b.rowWords[r + 1];
    // the trailing padding pseudo-word is not a word for the model
    let end = b.seqBytes;
    if (w1 > w0 && b.segments[(r + 1) * b.seqBytes - 1] < 0) {
      w1--;
      end -= b.wordLens[w1];
    }
    const cu = new Int32Array(w1 - w0 + 1);
    for (let w = w0; w < w1; w++) cu[w - w0 + 1] = cu[w - w0] + b.wordLens[w];
    if (cu[cu.length - 1] !== end) throw new Error('hatBatch: word lengths do not cover the row');
    cuSeqlens.push(cu);
  }
  const documents = b.segments.map((s) => (s < 0 ? 0 : s));
  return { B: b.rows, T: b.seqBytes, bytes: b.bytes, cuSeqlens, documents };
}

/** The HAT model as the trainer sees it; `save` writes the released layout in `exportDtype`. */
export function hatTrainable(model: HATModel, exportDtype: 'F32' | 'BF16'): TrainableModel {
  return {
    store: model.store,
    config: hatConfigToJSON(model.config),
    freeActivations: true,
    loss(b) {
      const r = model.loss(hatBatch(b));
      return { loss: r.loss, bytes: r.count };
    },
    save(dir) {
      saveHATModel(dir, model, { dtype: exportDtype });
    },
  };
}
