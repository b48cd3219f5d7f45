/**
 * Loading a HAT model (and its splitter) for CLI commands: `--model DIR`, or the bundled
 * default model at `models/default/` of the package; config and checkpoint errors become
 * one-line UserErrors.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from './errors.js';
import { HATConfigError } from '../models/hat/config.js';
import { HATCheckpointError, loadHATModel } from '../models/hat/checkpoint.js';
import type { HATModel } from '../models/hat/model.js';
import { HatSplitter } from '../models/hat/splitter.js';

/** `models/default/` of the package (this file is dist/src/cli/hat_model.js). */
export function defaultModelDir(): string {
  return fileURLToPath(new URL('../../../models/default/', import.meta.url));
}

export interface LoadedHAT {
  dir: string;
  model: HATModel;
  splitter: HatSplitter;
}

/** The model of `--model DIR` (or the bundled default) with the splitter its config describes. */
export function loadHATForCli(dirOpt: string | number | boolean | undefined): LoadedHAT {
  let dir: string;
  if (dirOpt === undefined || dirOpt === '' || typeof dirOpt !== 'string') {
    dir = defaultModelDir();
    if (!fs.existsSync(`${dir}/config.json`)) {
      throw new UserError(`no --model given and the bundled default model is missing (${dir}); pass --model DIR (a folder with config.json and model.safetensors)`);
    }
  } else dir = dirOpt;
  if (!fs.existsSync(dir)) throw new UserError(`--model ${dir}: no such folder`);
  let model: HATModel;
  try {
    model = loadHATModel(dir);
  } catch (e) {
    if (e instanceof HATConfigError || e instanceof HATCheckpointError) throw new UserError(e.message);
    throw e;
  }
  const splitter = new HatSplitter({ maxWordSize: model.config.max_word_size, specialTokens: model.config.special_token_dict });
  return { dir, model, splitter };
}
