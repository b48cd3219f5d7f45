/**
 * Conversion (issue 6): the BPE Llama baseline of quality.ts converted to HAT (src/convert:
 * its blocks become the HAT backbone, embedding and head dropped, tiny byte modules initialised)
 * and trained in two stages (backbone frozen, then everything), vs a HAT of exactly the same
 * shape trained from scratch, for the same total number of steps on the same data.
 *
 * Run: npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/conversion.js
 * Writes docs/results/conversion.md and conversion.svg.
 */
import { evaluateText } from '../src/models/hat/score.js';
import { lineSvg } from '../src/eval/svg.js';
import {
  BATCH, EVAL_BYTES, LLAMA_INTERMEDIATE, LLAMA_LAYERS, LR, SEQ_BYTES, STAGE1_STEPS, STAGE2_LR, STEPS, WARMUP,
  brown, convertedModel, convertedRun, fmt, hatLlamaShapeModel, hatLlamaShapeRun, hatRun, llamaRun, log, mdTable, pct, splitter, writeResult, writeResultKeepingAnalysis, type Run,
} from './common.js';

const t0 = performance.now();
const lm = llamaRun();
const conv = convertedRun();
const convEq = convertedRun(LR);
const scratch = hatLlamaShapeRun();
const tiny = hatRun();
const data = brown();
const sp = splitter();
log('evaluating on all held-out documents');
const ce = evaluateText(convertedModel(conv), sp, data.valTexts, { contextBytes: 1024 });
const ee = evaluateText(convertedModel(convEq), sp, data.valTexts, { contextBytes: 1024 });
const se = evaluateText(hatLlamaShapeModel(scratch), sp, data.valTexts, { contextBytes: 1024 });
const te = evaluateText(tiny.model, sp, data.valTexts, { contextBytes: 1024 });

const curve = (r: Run): { x: number; y: number }[] => r.log.filter((e) => e.valBpb !== undefined).map((e) => ({ x: e.step, y: e.valBpb as number }));
const cc = curve(conv);
const ec = curve(convEq);
const sc = curve(scratch);
const steps = [...new Set([...cc, ...ec, ...sc].map((p) => p.x))].sort((a, b) => a - b);
const at = (c: { x: number; y: number }[], s: number): string => fmt(c.find((p) => p.x === s)?.y ?? NaN);

const md: string[] = [];
md.push('# Llama -> HAT conversion vs HAT from scratch');
md.push('');
md.push('Written by `experiments/conversion.ts`. Rerun (trains what is missing into `experiments/.cache/`):');
md.push('');
md.push('```');
md.push('npx tsc -p tsconfig.json && TFREE_THREADS=1 node dist/experiments/conversion.js');
md.push('```');
md.push('');
md.push('## Setup');
md.push('');
md.push(`- **Source**: the BPE Llama baseline of [quality.md](quality.md) (${LLAMA_LAYERS} layers x 256, MLP ${LLAMA_INTERMEDIATE}, ${lm.run.params.toLocaleString('en-US')} parameters,`);
md.push(`  ${STEPS} steps on the Brown training documents).`);
md.push('- **Converted**: `convertLlamaToHAT(llama, { preset: "tiny", seed: 0 })`: its blocks copied into the HAT backbone');
md.push('  (value for value), embedding, final norm and head dropped, tiny byte encoder/connectors/decoder initialised;');
md.push(`  then \`runStages\`: stage 1 = ${STAGE1_STEPS} steps with the backbone frozen at lr ${LR}, stage 2 = ${STEPS - STAGE1_STEPS} steps of`);
md.push(`  everything at lr ${STAGE2_LR}; a second converted run takes stage 2 at lr ${LR}, the scratch run's, to remove that difference (each stage: ${WARMUP} warmup steps, cosine to 10%, fresh AdamW moments, its own data order).`);
md.push(`- **Scratch**: a HAT of the same config (tiny byte modules + a ${LLAMA_LAYERS} x 256 backbone with MLP ${LLAMA_INTERMEDIATE}) from a seeded`);
md.push(`  random init, ${STEPS} steps at lr ${LR}, ${WARMUP} warmup steps, cosine to 10%.`);
md.push(`- Both: ${BATCH} rows x ${SEQ_BYTES} bytes per step, weight decay 0.1, clip 1.0, seed 0, \`TFREE_THREADS=1\`. Same number of`);
md.push('  steps and bytes; the converted model\'s stage 1 is cheaper per step (no weight gradients in the');
md.push('  backbone), and it also carries the Llama\'s own training (the Llama saw the same amount of text as tokens');
md.push('  before), so "same steps" is not "same total compute": the conversion re-uses compute spent earlier.');
md.push(`- For reference, the tiny HAT of quality.md (2-layer backbone, ${tiny.run.params.toLocaleString('en-US')} parameters, ${STEPS} steps).`);
md.push('');
md.push('## Results');
md.push('');
md.push('All held-out text (22 documents), chunks of whole words <= 1,024 bytes, as in quality.md:');
md.push('');
md.push(mdTable(
  ['model', 'parameters', 'held-out bpb', 'word accuracy', 'byte accuracy', 'training time'],
  [
    [`converted (${STAGE1_STEPS} frozen + ${STEPS - STAGE1_STEPS} full)`, conv.params.toLocaleString('en-US'), fmt(ce.bitsPerByte, 4), pct(ce.wordAccuracy, 2), pct(ce.byteAccuracy), `${(conv.seconds / 60).toFixed(1)} min`],
    [`converted, stage 2 at lr ${LR} (${STAGE1_STEPS} frozen + ${STEPS - STAGE1_STEPS} full)`, convEq.params.toLocaleString('en-US'), fmt(ee.bitsPerByte, 4), pct(ee.wordAccuracy, 2), pct(ee.byteAccuracy), `${(convEq.seconds / 60).toFixed(1)} min`],
    [`scratch, same shape (${STEPS})`, scratch.params.toLocaleString('en-US'), fmt(se.bitsPerByte, 4), pct(se.wordAccuracy, 2), pct(se.byteAccuracy), `${(scratch.seconds / 60).toFixed(1)} min`],
    [`tiny HAT of quality.md (${STEPS})`, tiny.run.params.toLocaleString('en-US'), fmt(te.bitsPerByte, 4), pct(te.wordAccuracy, 2), pct(te.byteAccuracy), `${(tiny.run.seconds / 60).toFixed(1)} min`],
  ],
));
md.push('');
md.push(`Validation bpb during training (first ${(EVAL_BYTES / 1024).toFixed(0)} KiB of held-out text; the converted run's stage 1 ends at step ${STAGE1_STEPS}):`);
md.push('');
md.push(mdTable(['step', ...steps.map(String)], [['converted', ...steps.map((s) => at(cc, s))], [`converted, stage 2 lr ${LR}`, ...steps.map((s) => at(ec, s))], ['scratch', ...steps.map((s) => at(sc, s))]]));
md.push('');
md.push('![validation bpb, converted vs scratch](conversion.svg)');
md.push('');
md.push(`Time: ${((performance.now() - t0) / 1e3).toFixed(0)} s for this script (training excluded when cached), shared 2-core VM.`);
md.push('');
writeResult('conversion.svg', lineSvg([{ name: 'converted', points: cc }, { name: `converted (stage 2 lr ${LR})`, points: ec }, { name: 'scratch', points: sc }], { title: `validation bpb (converted: backbone frozen until step ${STAGE1_STEPS})`, xLabel: 'step', yLabel: 'bits per byte' }));
writeResultKeepingAnalysis('conversion.md', `${md.join('\n')}\n`);
process.stdout.write(`${JSON.stringify({ converted: ce, convertedSameLr: ee, scratch: se, tiny: te })}\n`);
