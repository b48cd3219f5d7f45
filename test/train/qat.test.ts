/**
 * `tfree train --qat`: a QAT run (k-means with centroid refits) killed with SIGKILL and resumed
 * gives the uninterrupted run's loss curve and final weights exactly (the centroids are part of
 * the checkpoint), and writes a packed model that `tfree generate --model DIR` runs from.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/nn/index.js';
import { openCheckpoint, writeSafetensors, type TensorData } from '../../src/io/index.js';
import { hatConfigToJSON, makeHATConfig } from '../../src/models/hat/config.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function readLog(out: string): unknown[] {
  return fs.readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((s) => {
    const { time: _t, bytesPerSec: _b, ...rest } = JSON.parse(s) as Record<string, unknown>;
    return rest;
  });
}

test('train --qat kmeans2: SIGKILL + --resume reproduces the run exactly; the packed output loads and generates', { timeout: 240_000 }, async () => {
  const root = fs.mkdtempSync(join(tmpdir(), 'tfree-qat-'));
  try {
    const rng = new Rng(3);
    const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'end.'];
    const lines = Array.from({ length: 20 }, () => JSON.stringify({ text: Array.from({ length: 10 + rng.int(30) }, () => words[rng.int(words.length)]).join(' ') }));
    const data = join(root, 'docs.jsonl');
    fs.writeFileSync(data, lines.join('\n') + '\n');
    const cfg = makeHATConfig({ byteHidden: 16, byteHeads: 2, byteKvHeads: 1, byteIntermediate: 32, encoderLayers: 1, decoderLayers: 1, backboneHidden: 32, backboneHeads: 2, backboneKvHeads: 2, backboneIntermediate: 64, backboneLayers: 1, slidingWindow: 24 });
    const cfgFile = join(root, 'micro.json');
    fs.writeFileSync(cfgFile, JSON.stringify(hatConfigToJSON(cfg)));
    const steps = 16;
    const args = (out: string): string[] => [
      cli, 'train', '--data', data, '--out', out, '--config', cfgFile, '--steps', String(steps), '--batch', '2', '--seq-bytes', '64', '--lr', '0.01',
      '--warmup', '2', '--eval-every', '4', '--save-every', '3', '--val-fraction', '0.2', '--seed', '2', '--qat', 'kmeans2', '--qat-block', '16', '--qat-refit-every', '5', '--json',
    ];
    const full = join(root, 'full');
    const r = spawnSync(process.execPath, args(full), { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const ref = readLog(full);
    assert.equal(ref.length, steps);

    const cut = join(root, 'cut');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, args(cut), { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      child.stdout.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        // after the checkpoint at step 9 (one refit at step 5 done, the next at 10 still ahead)
        if (/"event":"checkpoint","step":9/.test(buf) && child.exitCode === null) child.kill('SIGKILL');
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error('the run ended before it was killed'))));
    });
    assert.equal(fs.existsSync(join(cut, 'packed')), false);
    const st = JSON.parse(fs.readFileSync(join(cut, 'checkpoints', 'step-00000009', 'state.json'), 'utf8')) as { extra: { format: string; steps: number; codebooks: Record<string, number[]> } };
    assert.equal(st.extra.format, 'kmeans2');
    assert.equal(st.extra.steps, 9);
    assert.ok(Object.keys(st.extra.codebooks).length > 0);
    const other = spawnSync(process.execPath, [...args(cut), '--resume', '--qat', 'int2'], { encoding: 'utf8' });
    assert.equal(other.status, 2);
    assert.match(other.stderr, /--resume: the run differs .*qat/);
    const res = spawnSync(process.execPath, [...args(cut), '--resume'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(readLog(cut), ref, 'the resumed QAT loss curve equals the uninterrupted one');
    for (const f of ['model.safetensors', join('packed', 'model.safetensors')]) {
      const a = openCheckpoint(join(full, f));
      const b = openCheckpoint(join(cut, f));
      assert.deepEqual(b.names(), a.names());
      for (const n of a.names()) assert.deepEqual(b.read(n).data, a.read(n).data, `${f}: ${n}`);
      a.close();
      b.close();
    }
    const pk = openCheckpoint(join(full, 'packed', 'model.safetensors'));
    assert.equal(pk.metadata['tfree.packed'], '1');
    assert.ok(pk.names().some((n) => n.endsWith('.codebook')));
    pk.close();
    const gen = spawnSync(process.execPath, [cli, 'generate', '--model', join(full, 'packed'), '--prompt', 'the quick', '--max-bytes', '20', '--seed', '1', '--json'], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    assert.ok((JSON.parse(gen.stdout) as { bytes: number }).bytes > 0);

    // a corrupt packed checkpoint (one scales tensor missing) is a one-line error naming the tensor
    const bad = join(root, 'bad');
    fs.mkdirSync(bad);
    fs.copyFileSync(join(full, 'packed', 'config.json'), join(bad, 'config.json'));
    const src = openCheckpoint(join(full, 'packed', 'model.safetensors'));
    const drop = src.names().find((n) => n.endsWith('.scales')) ?? '';
    writeSafetensors(join(bad, 'model.safetensors'), src.names().filter((n) => n !== drop).map((n) => [n, src.read(n)] as [string, TensorData]), src.metadata);
    src.close();
    const broken = spawnSync(process.execPath, [cli, 'generate', '--model', bad, '--prompt', 'the', '--max-bytes', '5'], { encoding: 'utf8' });
    assert.equal(broken.status, 2);
    assert.ok(broken.stderr.includes(drop) && /missing/.test(broken.stderr), broken.stderr);
    assert.doesNotMatch(broken.stderr, /\n\s+at /);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
