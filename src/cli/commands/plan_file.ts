/**
 * Compression plans for `tfree quantize --plan` / `tfree prune --plan` (written by `tfree eval
 * plan`): `{"tfree_plan": 1, "kind": "precision" | "sparsity", "components": {WEIGHT_NAME: {...}}}`
 * where a precision entry is `{"format": "int8" | "kmeans4" | ... | "f32", "block"?: N}` and a
 * sparsity entry is `{"sparsity": S}` (S in [0, 1]). Weights not named stay unchanged; a name the
 * checkpoint lacks is an error. Other keys (method, target, achieved, ...) are informational.
 */
import * as fs from 'node:fs';
import { UserError } from '../errors.js';
import { parseFormat, FormatError, type QuantFormat, type ScaleDtype } from '../../compress/index.js';
import { openCheckpoint } from '../../io/index.js';

export interface PlanEntry {
  format?: string;
  block?: number;
  sparsity?: number;
}

export interface ReadPlan {
  kind: 'precision' | 'sparsity';
  components: Map<string, PlanEntry>;
}

export function readPlanFile(path: string, want: 'precision' | 'sparsity'): ReadPlan {
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`--plan ${path}: ${(e as Error).message}`);
  }
  const o = v as { tfree_plan?: unknown; kind?: unknown; components?: unknown } | null;
  if (o === null || typeof o !== 'object' || o.tfree_plan !== 1) throw new UserError(`--plan ${path}: not a plan file (expected {"tfree_plan": 1, "kind", "components"})`);
  if (o.kind !== want) throw new UserError(`--plan ${path}: a "${String(o.kind)}" plan; this command needs a "${want}" plan`);
  if (o.components === null || typeof o.components !== 'object' || Array.isArray(o.components)) throw new UserError(`--plan ${path}: "components" must be an object of weight name -> entry`);
  const components = new Map<string, PlanEntry>();
  for (const [name, e] of Object.entries(o.components as Record<string, unknown>)) {
    const ent = e as PlanEntry | null;
    if (ent === null || typeof ent !== 'object') throw new UserError(`--plan ${path}: component "${name}": entry must be an object`);
    if (want === 'sparsity' && !(typeof ent.sparsity === 'number' && ent.sparsity >= 0 && ent.sparsity <= 1)) throw new UserError(`--plan ${path}: component "${name}": "sparsity" must be a number in [0, 1]`);
    if (want === 'precision' && typeof ent.format !== 'string') throw new UserError(`--plan ${path}: component "${name}": "format" must be a string`);
    if (ent.block !== undefined && !(Number.isInteger(ent.block) && ent.block > 0)) throw new UserError(`--plan ${path}: component "${name}": "block" must be a positive integer`);
    components.set(name, ent);
  }
  return { kind: want, components };
}

/** Checks that every planned weight exists in the checkpoint (fails naming the first that does not). */
export function checkPlanNames(plan: ReadPlan, ckptPath: string, planPath: string): void {
  let names: Set<string>;
  try {
    const ck = openCheckpoint(ckptPath);
    names = new Set(ck.names());
    ck.close();
  } catch {
    return; // the conversion reports unreadable checkpoints
  }
  for (const n of plan.components.keys()) if (!names.has(n)) throw new UserError(`--plan ${planPath}: component "${n}" is not a tensor of ${ckptPath}`);
}

/** Per-tensor formats of a precision plan (null: unchanged). */
export function planFormats(plan: ReadPlan, planPath: string, defaults: { blockSize: number; scaleDtype: ScaleDtype }): (name: string) => QuantFormat | null {
  const formats = new Map<string, QuantFormat | null>();
  for (const [n, e] of plan.components) {
    const f = e.format as string;
    if (f === 'f32' || f === 'none') {
      formats.set(n, null);
      continue;
    }
    try {
      formats.set(n, parseFormat(f, { blockSize: e.block ?? defaults.blockSize, scaleDtype: defaults.scaleDtype }));
    } catch (err) {
      if (err instanceof FormatError) throw new UserError(`--plan ${planPath}: component "${n}": ${err.message}`);
      throw err;
    }
  }
  return (name) => formats.get(name) ?? null;
}
