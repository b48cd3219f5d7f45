/**
 * Text perturbations of the HAT paper's robustness study (§4.4), as the reference evaluator's
 * `HatPaperEditor` (eval-framework, tasks/utils.py; ../shared/specs/hat.md §7.1) defines them:
 *
 * - candidates: indices i of interior characters (0 < i < n - 1, counted in code points, as
 *   Python indexes a str) that are alphanumeric and whose two neighbours are alphanumeric too;
 * - a sample of floor(len(candidates) x pct) of them, drawn without replacement in random order
 *   (Python's `random.sample`);
 * - permute: for each sampled index in that order, swap the character with the next one (on the
 *   progressively edited text, so neighbouring swaps can compound, as in the reference);
 * - replace: each sampled character becomes a random printable ASCII character, code 33..126
 *   (drawn in sample order);
 * - delete: the sampled characters are removed;
 * - uppercase: the whole text upper-cased (`str.upper()`; JavaScript's toUpperCase, which can
 *   change the length, e.g. "ß" -> "SS", as Python's does).
 *
 * Alphanumeric = Unicode letter or number (\p{L}, \p{N}); Python's `str.isalnum` is the same set
 * up to rare characters (e.g. some combining marks). Random draws come from our seeded `Rng`, so
 * the positions are not Python's for the same seed; the distribution is the same.
 */
import { Rng } from '../nn/rng.js';

export type Perturbation = 'none' | 'permute' | 'replace' | 'delete' | 'uppercase';
export const PERTURBATIONS: readonly Perturbation[] = ['none', 'permute', 'replace', 'delete', 'uppercase'];

const ALNUM = /^[\p{L}\p{N}]$/u;
const isAlnum = (c: string): boolean => ALNUM.test(c);

/** Candidate indices (code points) of `chars`: interior alphanumerics with alphanumeric neighbours. */
export function candidateIndices(chars: readonly string[]): number[] {
  const out: number[] = [];
  for (let i = 1; i + 1 < chars.length; i++) if (isAlnum(chars[i]) && isAlnum(chars[i - 1]) && isAlnum(chars[i + 1])) out.push(i);
  return out;
}

/** floor(len x pct) of the candidates, without replacement, in random order (partial Fisher-Yates). */
export function sampleIndices(chars: readonly string[], pct: number, rng: Rng): number[] {
  if (!(pct >= 0 && pct <= 1)) throw new RangeError(`pct must be in [0, 1], got ${pct}`);
  const cand = candidateIndices(chars);
  const k = Math.floor(cand.length * pct);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(cand.length - i);
    [cand[i], cand[j]] = [cand[j], cand[i]];
  }
  return cand.slice(0, k);
}

/** Applies one perturbation to `text` with a fraction `pct` of the candidates (default 0.1). */
export function perturb(text: string, kind: Perturbation, rng: Rng, pct = 0.1): string {
  if (kind === 'none') return text;
  if (kind === 'uppercase') return text.toUpperCase();
  const chars = Array.from(text);
  const idx = sampleIndices(chars, pct, rng);
  if (kind === 'permute') {
    for (const i of idx) [chars[i], chars[i + 1]] = [chars[i + 1], chars[i]];
  } else if (kind === 'replace') {
    for (const i of idx) chars[i] = String.fromCharCode(33 + rng.int(94));
  } else if (kind === 'delete') {
    for (const i of idx) chars[i] = '';
  } else {
    throw new RangeError(`unknown perturbation "${kind as string}"`);
  }
  return chars.join('');
}

/** A perturbation as the editor is used on a data set: one seeded generator per (kind, seed), texts in order. */
export class TextEditor {
  private readonly rng: Rng;
  constructor(
    readonly kind: Perturbation,
    seed: number | string = 0,
    readonly pct = 0.1,
  ) {
    this.rng = new Rng(`perturb:${kind}:${seed}`);
  }
  apply(text: string): string {
    return perturb(text, this.kind, this.rng, this.pct);
  }
}
