/**
 * `tfree train --qat FORMAT`: quantization-aware training of a HAT model (src/compress/qat.ts).
 *
 * Every quantizable Linear of the model (embeddings and the head stay f32, as `tfree quantize`)
 * runs its forward pass on the fake-quantized weight with a straight-through estimator; k-means
 * centroids are fitted on the weights the run starts from (`--init DIR`: a trained model, the
 * study's recipe) and stay fixed, or are refitted every `--qat-refit-every N` steps. The QAT state
 * (centroids and the refit counter) goes into every checkpoint, so `--resume` stays exact. At the
 * end the model is packed with the trained centroids into a packed checkpoint folder
 * (`--qat-out DIR`, default `<out>/packed`), loadable by `tfree generate/eval --model DIR`.
 */
import { UserError } from '../errors.js';
import type { TrainableModel } from '../../train/index.js';
import { FormatError, enableQat, parseFormat, qatTrainable, type QatHandle } from '../../compress/index.js';
import type { HATModel } from '../../models/hat/model.js';

export interface QatSetup {
  handle: QatHandle;
  /** `trainable` with the QAT state in its checkpoints */
  trainable: TrainableModel;
  /** description for the run record (a resume with other QAT settings is refused) */
  run: Record<string, unknown>;
}

/** Wraps the model for QAT in `format` (an unknown format or a bad block size is a UserError). */
export function setupQat(model: HATModel, trainable: TrainableModel, format: string, opts: { refitEvery: number; block: number; seed: number }): QatSetup {
  if (!Number.isInteger(opts.refitEvery) || opts.refitEvery < 0) throw new UserError(`--qat-refit-every must be an integer >= 0, got ${opts.refitEvery}`);
  let handle: QatHandle;
  try {
    handle = enableQat(model, parseFormat(format, { blockSize: opts.block }), { refitEvery: opts.refitEvery, seed: opts.seed });
  } catch (e) {
    if (e instanceof FormatError) throw new UserError(`--qat ${format}: ${e.message}${/block size/.test(e.message) ? ' (--qat-block N)' : ''}`);
    throw e;
  }
  const reduced = [...handle.blockSizes().values()].filter((b) => b !== handle.format.blockSize);
  if (reduced.length > 0) process.stderr.write(`note: --qat-block ${handle.format.blockSize} does not divide every row length: used block ${Math.min(...reduced)} for ${reduced.length} weight${reduced.length === 1 ? '' : 's'}\n`);
  return {
    handle,
    trainable: qatTrainable(handle, trainable),
    run: { qat: handle.format.name, qatBlock: opts.block, qatRefitEvery: opts.refitEvery },
  };
}
