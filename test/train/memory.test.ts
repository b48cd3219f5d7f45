/**
 * Training must not grow memory step over step: a tiny Llama-style LM trains for 1,000 steps in a
 * child process per backend; after a forced GC, JS heap and array-buffer memory at the end must be
 * within a small margin of their values after the first 200 steps, RSS must not climb from the
 * middle of the run to its end (a leak grows steadily; see the RSS check), and the loss must fall.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { availableBackends } from '../../src/tensor/index.js';

interface Sample {
  step: number;
  rss: number;
  heap: number;
  external: number;
  loss: number;
  first: number;
}

const worker = fileURLToPath(new URL('./memory_worker.js', import.meta.url));
const MiB = 2 ** 20;
// V8 grows its young generation in 16 MiB steps when it sees fit (RSS then jumps with heapUsed
// flat); fixing its size from the start leaves RSS to measure what we allocate.
const v8Sizing = ['--min-semi-space-size=16', '--max-semi-space-size=16'];
// glibc raises its mmap threshold after the first large free (dynamic threshold), after which
// buffers of a few MiB come from the brk heap and RSS keeps the high-water mark (a one-time jump
// of ~10 MiB seen once in CI with heap and external flat); a fixed threshold keeps large buffers
// mmapped, so RSS again measures what is live.
const mallocEnv = { MALLOC_MMAP_THRESHOLD_: '131072' };

for (const backend of ['native', 'js'] as const) {
  const skip = availableBackends().includes(backend) ? false : `${backend} kernels unavailable`;
  test(`memory stays flat over 1,000 training steps [${backend}]`, { skip, timeout: 300_000 }, () => {
    const res = spawnSync(process.execPath, ['--expose-gc', ...v8Sizing, worker, backend, '1000', '100'], { encoding: 'utf8', env: { ...process.env, ...mallocEnv, TFREE_BACKEND: backend } });
    assert.equal(res.status, 0, `worker failed: ${res.stderr}`);
    const samples: Sample[] = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Sample);
    assert.equal(samples.length, 10);
    const base = samples[1]; // after 200 steps: caches, pools and JIT have settled
    const end = samples[samples.length - 1];
    const growth = {
      rss: (end.rss - base.rss) / MiB,
      heap: (end.heap - base.heap) / MiB,
      external: (end.external - base.external) / MiB,
    };
    const table = samples.map((s) => `${s.step}: rss ${(s.rss / MiB).toFixed(1)} heap ${(s.heap / MiB).toFixed(1)} ext ${(s.external / MiB).toFixed(1)} MiB`).join('\n');
    assert.ok(growth.heap < 2, `JS heap grew ${growth.heap.toFixed(2)} MiB over 800 steps\n${table}`);
    assert.ok(growth.external < 1, `array-buffer memory grew ${growth.external.toFixed(2)} MiB over 800 steps\n${table}`);
    console.log(`[${backend}] growth over 800 steps: rss ${growth.rss.toFixed(2)} MiB, heap ${growth.heap.toFixed(2)} MiB, external ${growth.external.toFixed(2)} MiB`);
    // RSS settles at a plateau once the allocator's arenas and the thread pool's scratch have
    // grown, usually by step 200 but at times (under load) only by step 300-600: a one-time jump of
    // 6-9 MiB between two samples that is not a leak (seen in CI and in repeated local runs, heap and
    // external flat; in CI on 2026-12-05 at steps 500-600, then flat). A leak grows steadily
    // instead, so the check takes the RSS growth from step 300 to step 1000 less the largest rise
    // between two neighbouring samples (the one-time step): a leak of 8 KiB per step gives 0.8 MiB per
    // 100 steps, 4.7 MiB over the seven intervals without the largest, and fails the 4 MiB bound;
    // the whole run's growth stays bounded below.
    const tail = samples.slice(2).map((s) => s.rss);
    let largestRise = 0;
    for (let i = 1; i < tail.length; i++) largestRise = Math.max(largestRise, tail[i] - tail[i - 1]);
    const lateGrowth = (tail[tail.length - 1] - tail[0] - largestRise) / MiB;
    assert.ok(lateGrowth < 4, `RSS grew ${lateGrowth.toFixed(2)} MiB from step 300 to step 1000 besides its largest single rise of ${(largestRise / MiB).toFixed(2)} MiB (a leak)\n${table}`);
    assert.ok(growth.rss < 16, `RSS grew ${growth.rss.toFixed(2)} MiB over 800 steps\n${table}`);
    assert.ok(end.loss < 0.7 * end.first, `loss should fall: ${end.first} -> ${end.loss}`);
  });
}
