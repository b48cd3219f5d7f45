import * as fs from 'node:fs';
import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { EXIT_INTERRUPTED, INTERRUPTED, runWriteJob } from '../interrupt.js';
import { Progress } from '../progress.js';
import { checkOutputPath } from '../resources.js';
import { HATConfigError } from '../../models/hat/config.js';
import { LIKE_PRESETS, freeBytes, hatParamCount, likeConfig, synthCheckpointJob, type SynthDType } from '../../models/hat/synth.js';

const DTYPES: Record<string, SynthDType> = { bf16: 'BF16', f32: 'F32', f16: 'F16' };

export const synthModelCommand: CommandSpec = {
  name: 'synth-model',
  summary: 'write a random-weights HAT checkpoint shaped like a released one (e.g. 8B)',
  usage: 'tfree synth-model --like hat-8b|hat-8b-mini|hat-tiny|hat-small|CONFIG.json --out DIR [--dtype bf16|f32|f16] [--seed N] [--shard-gb G] [--overwrite]',
  details: [
    'Writes config.json and random weights in the released layout (safetensors names; shards',
    'model-0000i-of-0000N.safetensors plus model.safetensors.index.json above --shard-gb).',
    'Every size comes from the config: a --like preset is a config.json template, or give a',
    'config.json path. hat-8b: the Llama-3.1-8B-TFree-HAT shape (Llama 3.1 8B backbone); its',
    'encoder/decoder sizes are assumptions (docs/hat.md, "Release-size stand-ins"). Tensors are',
    'produced and written one at a time (the model is never in memory); the free disk space is',
    'checked first. Values are seeded: the same --seed gives the same files. Ctrl-C stops after the',
    'current tensor, removes the partial files and exits 130.',
  ].join('\n'),
  options: {
    like: { type: 'string', help: `preset (${Object.keys(LIKE_PRESETS).join(', ')}) or a config.json file/folder`, meta: 'NAME' },
    out: { type: 'string', help: 'output folder (must not exist unless --overwrite)', meta: 'DIR' },
    dtype: { type: 'string', help: 'tensor dtype: bf16, f32 or f16', default: 'bf16', choices: ['bf16', 'f32', 'f16'] },
    seed: { type: 'int', help: 'seed of the random values', default: 0, min: 0, max: 2 ** 31 - 1 },
    'shard-gb': { type: 'number', help: 'largest shard in GB (1e9 bytes)', default: 5, above: 0 },
    overwrite: { type: 'boolean', help: 'write into an existing --out folder' },
    quiet: { type: 'boolean', help: 'no progress bar' },
  },
  async run(args) {
    const o = args.options;
    if (typeof o.like !== 'string' || o.like === '') throw new UserError(`give --like NAME (${Object.keys(LIKE_PRESETS).join(', ')}) or --like CONFIG.json`);
    if (typeof o.out !== 'string' || o.out === '') throw new UserError('give --out DIR (the checkpoint folder to write)');
    const dtype = DTYPES[String(o.dtype).toLowerCase()];
    if (dtype === undefined) throw new UserError(`--dtype must be bf16, f32 or f16, got "${String(o.dtype)}"`);
    const seed = Number(o.seed);
    if (seed < 0 || seed > 0xffffffff) throw new UserError(`--seed must be in 0..4294967295, got ${seed}`);
    const shardGb = Number(o['shard-gb']);
    if (!(shardGb >= 0.00001 && shardGb <= 1000)) throw new UserError(`--shard-gb must be in [0.00001, 1000], got ${shardGb}`);
    const out = o.out;
    checkOutputPath(out, '--out', 'dir');
    const existed = fs.existsSync(out);
    if (existed) {
      if (!fs.statSync(out).isDirectory()) throw new UserError(`--out ${out} exists and is not a folder`);
      if (o.overwrite !== true && fs.readdirSync(out).length > 0) throw new UserError(`--out ${out} exists and is not empty; pass --overwrite to write into it`);
    }
    let cfg;
    try {
      cfg = likeConfig(o.like);
    } catch (e) {
      if (e instanceof HATConfigError) throw new UserError(e.message);
      throw e;
    }
    const size = dtype === 'F32' ? 4 : 2;
    const params = hatParamCount(cfg);
    const bytes = params * size;
    const free = freeBytes(out);
    const need = bytes + 64 * 2 ** 20;
    if (free < need) throw new UserError(`--out ${out}: the checkpoint needs ${(need / 1e9).toFixed(2)} GB, the disk has ${(free / 1e9).toFixed(2)} GB free`);
    const totalMB = Math.ceil(bytes / 1e6);
    const bar = new Progress({ total: totalMB, label: `synth ${o.like} ${String(o.dtype)} (MB)`, enabled: o.quiet !== true });
    const t0 = Date.now();
    const res = await runWriteJob(
      'synth-model',
      out,
      (stop) => synthCheckpointJob(out, cfg, { dtype, seed, maxShardBytes: Math.round(shardGb * 1e9), onProgress: (done) => bar.update(Math.floor(done / 1e6)) }, stop),
      () => bar.stop(),
    );
    if (res === INTERRUPTED) return EXIT_INTERRUPTED;
    bar.finish();
    const secs = (Date.now() - t0) / 1000;
    process.stdout.write(
      `wrote ${out}: ${params.toLocaleString('en-US')} parameters, ${(bytes / 1e9).toFixed(2)} GB ${dtype} in ${res.files.length} file${res.files.length > 1 ? 's' : ''}${res.indexFile !== undefined ? ' + model.safetensors.index.json' : ''}, ${secs.toFixed(1)} s (${(bytes / 1e6 / Math.max(secs, 1e-3)).toFixed(0)} MB/s)\n`,
    );
    return 0;
  },
};
