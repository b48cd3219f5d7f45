/**
 * Staged training of a converted model with the generic trainer (src/train): each stage is one
 * `Trainer` run with its own steps, learning rate and warmup, over the same parameter store,
 * with some parameters frozen (ParamStore.freeze; AdamW skips them, so they keep their values
 * bit for bit). The HAT recipe: stage 1 trains encoder, connectors and decoder with the
 * backbone frozen; stage 2 trains everything.
 *
 * Stage k runs in `<outDir>/stage<k>/` (checkpoints/, log.jsonl, the stage's exported model);
 * the last stage exports into `<outDir>` itself. Each stage starts with fresh optimizer moments
 * and its own warmup + cosine schedule. With `resume`, a stage whose folder holds a finished
 * run only reloads its final weights, an unfinished one continues from its latest checkpoint,
 * and later stages start from there.
 */
import * as nodePath from 'node:path';
import { runToEnd, type BytePacker } from '../io/index.js';
import { Trainer, type LogEntry, type TrainSettings, type TrainableModel, type TrainerEvents } from '../train/index.js';

export interface Stage {
  steps: number;
  lr: number;
  /** warmup steps of this stage (default min(100, steps / 10)) */
  warmup?: number;
  /** dotted prefixes of parameters kept frozen in this stage (e.g. ["backbone"]) */
  freeze?: string[];
}

export interface StagedInit {
  model: TrainableModel;
  stages: Stage[];
  /** settings shared by all stages (steps, lr and warmup come from the stage) */
  settings: Omit<TrainSettings, 'steps' | 'lr' | 'warmup'>;
  /** the training stream of stage k (0-based) */
  makeTrain: (stage: number) => BytePacker;
  makeVal: (() => BytePacker) | null;
  outDir: string;
  /** description of the run, checked on resume (the stage and its frozen set are added) */
  run?: Record<string, unknown>;
  /** events of stage k's trainer */
  events?: (stage: number) => TrainerEvents;
  /** continue from the stage folders' checkpoints */
  resume?: boolean;
  /** called before stage k runs (after freezing) with its trainer */
  onStageStart?: (stage: number, trainer: Trainer, frozen: number) => void;
}

export interface StageResult {
  dir: string;
  /** this stage's log (all its steps, resumed sessions included) */
  log: LogEntry[];
  /** parameters frozen in this stage */
  frozen: number;
  finished: boolean;
}

/** The folder of stage k (0-based). */
export function stageDir(outDir: string, k: number): string {
  return nodePath.join(outDir, `stage${k + 1}`);
}

/**
 * Runs the stages in order. Returns one result per stage started; stops early (finished: false)
 * when a stage's `shouldStop` event ends it.
 */
export function runStages(init: StagedInit): StageResult[] {
  return runToEnd(stagesJob(init));
}

/** `runStages` as a job that yields after every training step (run it with runYielding for Ctrl-C). */
export function* stagesJob(init: StagedInit): Generator<number, StageResult[], void> {
  const store = init.model.store;
  const results: StageResult[] = [];
  for (let k = 0; k < init.stages.length; k++) {
    const st = init.stages[k];
    store.unfreeze(() => true);
    let frozen = 0;
    for (const prefix of st.freeze ?? []) frozen += store.freeze(prefix);
    const dir = stageDir(init.outDir, k);
    const last = k === init.stages.length - 1;
    const model: TrainableModel = {
      store,
      config: init.model.config,
      loss: (b, ctx) => init.model.loss(b, ctx),
      save: (d) => {
        const target = last ? init.outDir : d;
        if (init.model.save !== undefined) init.model.save(target);
        else throw new Error('runStages: the model has no save()');
      },
    };
    const trainer = new Trainer({
      model,
      settings: { ...init.settings, steps: st.steps, lr: st.lr, warmup: st.warmup ?? Math.min(100, Math.floor(st.steps / 10)) },
      train: init.makeTrain(k),
      makeVal: init.makeVal,
      outDir: dir,
      run: { ...(init.run ?? {}), stage: k + 1, stages: init.stages.length, freeze: st.freeze ?? [] },
      events: init.events?.(k),
    });
    if (init.resume === true) trainer.resume();
    init.onStageStart?.(k, trainer, frozen);
    yield* trainer.session();
    const finished = trainer.step >= st.steps;
    results.push({ dir, log: trainer.log, frozen, finished });
    if (!finished) break;
  }
  store.unfreeze(() => true);
  return results;
}
