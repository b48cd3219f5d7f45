/**
 * `tfree train` killed with SIGKILL mid-run and resumed with --resume gives the same loss curve
 * (and the same final weights) as an uninterrupted run, bit for bit. Runs the real CLI in child
 * processes on a micro HAT config and a small generated corpus.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/nn/index.js';
import { openCheckpoint } from '../../src/io/index.js';
import { hatConfigToJSON, makeHATConfig } from '../../src/models/hat/config.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function writeCorpus(dir: string): void {
  const rng = new Rng(11);
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'a', 'lazy', 'dog', 'über', 'café', 'naïve', '42', 'end.'];
  fs.mkdirSync(join(dir, 'sub'));
  const lines: string[] = [];
  for (let d = 0; d < 24; d++) {
    const n = 5 + rng.int(40);
    const text = Array.from({ length: n }, () => words[rng.int(words.length)]).join(' ');
    if (d % 3 === 0) fs.writeFileSync(join(dir, 'sub', `doc${d}.txt`), text);
    else lines.push(JSON.stringify({ text }));
  }
  fs.writeFileSync(join(dir, 'docs.jsonl'), lines.join('\n') + '\n');
}

interface Line {
  event: string;
  step?: number;
  [k: string]: unknown;
}

function comparable(l: Line): Line {
  const { time: _t, bytesPerSec: _b, ...rest } = l;
  return rest;
}

function readLog(out: string): Line[] {
  return fs
    .readFileSync(join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((s) => comparable(JSON.parse(s) as Line));
}

test('train: SIGKILL mid-run, then --resume, reproduces the uninterrupted loss curve and weights exactly', { timeout: 240_000 }, async () => {
  const root = fs.mkdtempSync(join(tmpdir(), 'tfree-resume-'));
  try {
    const data = join(root, 'data');
    fs.mkdirSync(data);
    writeCorpus(data);
    const cfg = makeHATConfig({
      byteHidden: 16,
      byteHeads: 2,
      byteKvHeads: 1,
      byteIntermediate: 32,
      encoderLayers: 1,
      decoderLayers: 1,
      backboneHidden: 32,
      backboneHeads: 2,
      backboneKvHeads: 2,
      backboneIntermediate: 64,
      backboneLayers: 1,
      slidingWindow: 24,
    });
    const cfgFile = join(root, 'micro.json');
    fs.writeFileSync(cfgFile, JSON.stringify(hatConfigToJSON(cfg)));
    const steps = 40;
    const args = (out: string): string[] => [
      cli, 'train', '--data', data, '--out', out, '--config', cfgFile, '--steps', String(steps), '--batch', '2', '--seq-bytes', '64',
      '--accum', '2', '--lr', '0.01', '--warmup', '3', '--eval-every', '6', '--save-every', '5', '--val-fraction', '0.2', '--seed', '5', '--json',
    ];
    const full = join(root, 'full');
    const r = spawnSync(process.execPath, args(full), { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const ref = readLog(full);
    assert.equal(ref.length, steps);
    assert.ok(ref.some((l) => typeof l.valBpb === 'number'));

    // the same run, killed with SIGKILL once it has passed step 12 (checkpoint at 10)
    const cut = join(root, 'cut');
    const seen: Line[] = [];
    const killedAt = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, args(cut), { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      let last = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const l = JSON.parse(buf.slice(0, nl)) as Line;
          buf = buf.slice(nl + 1);
          if (l.event !== 'step') continue;
          const { event: _e, ...rest } = comparable(l);
          seen.push(rest as Line);
          last = l.step as number;
          if (last >= 12 && child.exitCode === null) child.kill('SIGKILL');
        }
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(last) : reject(new Error(`child exited with ${code} before it was killed`))));
    });
    assert.ok(killedAt >= 12 && killedAt < steps, `killed at step ${killedAt}`);
    assert.equal(fs.existsSync(join(cut, 'model.safetensors')), false, 'the killed run did not finish');
    const latest = JSON.parse(fs.readFileSync(join(cut, 'checkpoints', 'latest.json'), 'utf8')) as { step: number };
    assert.ok(latest.step >= 10 && latest.step <= killedAt && latest.step % 5 === 0);
    // steps logged before the kill already match the reference
    for (const l of seen) assert.deepEqual(l, ref[(l.step as number) - 1]);

    // a fresh run into a folder with a run is refused; --resume continues it
    const refused = spawnSync(process.execPath, args(cut), { encoding: 'utf8' });
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /already holds a training run; pass --resume/);
    const changed = spawnSync(process.execPath, [...args(cut), '--resume', '--lr', '0.02'], { encoding: 'utf8' });
    assert.equal(changed.status, 2);
    assert.match(changed.stderr, /--resume: settings differ .*lr: checkpoint 0\.01, now 0\.02/);
    const res = spawnSync(process.execPath, [...args(cut), '--resume'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(readLog(cut), ref, 'the resumed loss curve equals the uninterrupted one');
    const a = openCheckpoint(full);
    const b = openCheckpoint(cut);
    assert.deepEqual(b.names(), a.names());
    for (const n of a.names()) assert.deepEqual(b.read(n).data, a.read(n).data, n);
    a.close();
    b.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
