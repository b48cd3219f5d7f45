/**
 * BackwardOptions.freeActivations and zeroGrad({ recycle }) (the trainer's HAT settings) on a whole HAT: three training
 * steps of gradients with recycled forward/backward buffers equal, bit for bit, those of steps
 * without recycling (every op of the model's graph, every backend), and memory is reused.
 */
import assert from 'node:assert/strict';
import { clearPool, pooledSize } from '../../src/tensor/index.js';
import { batchFromWords } from '../../src/models/hat/model.js';
import { forEachBackend } from '../helpers/numeric.js';
import { randomModel, spaceWords, testConfig } from './util.js';

forEachBackend('HAT gradients with freeActivations equal those without, step after step', () => {
  const m = randomModel(testConfig(), 3);
  const texts = ['The cat sat on the mat. It was warm.', 'A dog ran home, fast and far away.', 'Words, words and more words here.'];
  const run = (free: boolean): number[][] => {
    const out: number[][] = [];
    for (const t of texts) {
      m.store.zeroGrad({ recycle: free });
      const { loss } = m.loss(batchFromWords([{ words: spaceWords(t) }, { words: spaceWords(t.toUpperCase()) }]));
      loss.backward(undefined, false, { freeActivations: free });
      for (const [, p] of m.store.entries()) out.push(p.grad === null ? [] : p.grad.toArray());
    }
    return out;
  };
  clearPool();
  const plain = run(false);
  const recycled = run(true);
  assert.ok(pooledSize() > 0, 'nothing was recycled');
  assert.deepEqual(recycled, plain);
});
