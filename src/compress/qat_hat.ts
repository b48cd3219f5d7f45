/**
 * QAT of a HAT model with src/train's Trainer: the trainable whose checkpoints carry the QAT
 * state (so a resume is exact), and the packed checkpoint folder written from the trained
 * centroids at the end. Used by `tfree train --qat` and experiments/compress_hat.ts.
 */
import type { TrainableModel } from '../train/index.js';
import { fromFloat32, runToEnd, writeStagedJob, type StopFlag, type TensorData } from '../io/index.js';
import { writeHATConfigFile, type HATModel } from '../models/hat/index.js';
import { packedCheckpointJob } from './checkpoint.js';
import type { QatHandle, QatState } from './qat.js';

/** `trainable` with the QAT state (centroids, refit counter) saved in and restored from every checkpoint. */
export function qatTrainable(handle: QatHandle, trainable: TrainableModel): TrainableModel {
  return { ...trainable, saveState: () => handle.state(), loadState: (s) => handle.loadState(s as QatState) };
}

/**
 * Packs the QAT model (PackedLinear layers with the trained centroids; the f32 forward is gone
 * afterwards) and writes config.json + packed model.safetensors into `dir`. Returns the number
 * of packed weights.
 */
export function writeQatPacked(model: HATModel, handle: QatHandle, dir: string, dtype: 'F32' | 'BF16'): number {
  return runToEnd(writeQatPackedJob(model, handle, dir, dtype));
}

/**
 * `writeQatPacked` as a job: the packing runs before its first yield (nothing is written before
 * it, `dir` is not created yet); the write follows, yielding after each tensor. Run with
 * `runYielding`, a set `stop` ends the write with WriteInterrupted (its temp file removed).
 */
export function* writeQatPackedJob(model: HATModel, handle: QatHandle, dir: string, dtype: 'F32' | 'BF16', stop?: StopFlag): Generator<void, number, void> {
  const packed = handle.pack(model);
  const plain: [string, TensorData][] = model.store
    .entries()
    .filter(([n]) => !packed.has(n))
    .map(([n, t]) => [n, { dtype, shape: t.shape.slice(), data: fromFloat32(dtype, t.f32()) } as TensorData]);
  yield; // the write starts here: weights and config.json as one output (src/io/staged.ts), renamed into place together
  yield* writeStagedJob(dir, function* (out) {
    yield* packedCheckpointJob(out.part('model.safetensors'), packed, plain, { format: 'pt', 'tfree.qat': handle.format.name }, stop);
    writeHATConfigFile(out.part('config.json'), { ...model.config, torch_dtype: dtype === 'F32' ? 'float32' : 'bfloat16' });
  });
  return packed.size;
}
