/**
 * Bench group `packed`: batch-1 GEMV y = x W^T straight from packed weights (src/compress,
 * kernels().packedMatmul) for f32, int8, int4, kmeans4, kmeans2 and bin1 at 4096x4096 and
 * 4096x11008, each packed format with int16 and with int8 activations (the kernel's two modes), with time, GB/s on the packed bytes, that as a % of the measured read bandwidth
 * (64 MiB buffer and a buffer of the packed matrix's own size, timed in the same interleaved
 * loop as the kernels; 512 MiB buffer = DRAM, from the peak group), and the
 * speed-up over f32. Peer: ONNX Runtime's MatMulNBits (4-bit, block 64, accuracy levels 0 = f32
 * compute and 4 = int8 compute) when `onnxruntime-node` is installed, timed interleaved with ours
 * in the same loop (its calls are async: the per-call overhead, measured on a 64x64 model, is
 * reported beside it). The activation-side lookup-table kernel (packedLutMatmul, 1- and 2-bit formats,
 * int8 tables) runs in the same loop for kmeans2 and bin1, with its speed-up over the decode
 * kernel in int8 mode. ISA column: the path of the packed kernel family (avx2; avx512 = AVX-512 VNNI
 * decode kernel / 512-bit LUT kernel; avxvnni where the CPU has it); int8-activation and LUT rows run
 * once per path this CPU has, int16-activation rows on avx2 (the only path with an int16 kernel).
 * bf16 rows: the bf16-weight GEMV (bf16Matmul) with f32 and bf16 activations per path (avx512 =
 * vdpbf16ps for bf16 activations when the CPU has AVX512_BF16, widening otherwise; amx-bf16, an
 * opt-in path, only for bf16 activations, where at batch 1 it hands the call to vdpbf16ps).
 */
import type { Kernels, NativeExtras } from '../src/tensor/kernels/index.js';
import type { KernelFamily, NativeExtrasInternal } from '../src/tensor/kernels/native.js';
import { toBf16 } from '../src/tensor/kernels/js_bf16.js';
import { packedLutLayout } from '../src/tensor/kernels/js_packed_lut.js';
import { dequantize, formatSize, parseFormat, quantizeMatrix, type PackedMatrix } from '../src/compress/index.js';
import { matMulNBitsModel } from './onnx_model.js';
import type { BenchRecord, Peak } from './main.js';

export interface PackedBenchEnv {
  native: () => { kernels: Kernels; extras: NativeExtras } | undefined;
  measurePeak: (n: { kernels: Kernels; extras: NativeExtras }) => Peak;
  timeInterleaved: (fns: (() => void)[], opts?: { minReps?: number; maxReps?: number; budgetSec?: number }) => { best: number; median: number }[];
  randArray: (n: number, seed: number) => Float32Array;
  emit: (r: BenchRecord) => void;
  note: (s: string) => void;
  table: (title: string, head: string[], rows: (string | number)[][]) => void;
  fmt: (x: number) => string;
  now: () => number;
  quick: boolean;
}

interface OrtTensor {
  data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
interface OrtModule {
  InferenceSession: { create(bytes: Uint8Array, opts: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => OrtTensor;
  env: { versions?: Record<string, string> };
}

async function loadOrt(note: (s: string) => void): Promise<OrtModule | null> {
  try {
    const name = 'onnxruntime-node';
    return (await import(name)) as OrtModule;
  } catch (e) {
    note(`onnxruntime-node not installed or not loadable (${(e as Error).message.split('\n')[0]}): the MatMulNBits peer is skipped (install it: ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@1.30.0)`);
    return null;
  }
}

/** Our int4 packed matrix in MatMulNBits layout: q = level + 8, element 2j in the low nibble; f32 scales. */
function toMatMulNBits(p: PackedMatrix): { B: Uint8Array; scales: Float32Array } {
  const B = new Uint8Array(p.codes.length);
  for (let i = 0; i < B.length; i++) {
    const c = p.codes[i];
    const hi = ((c >> 4) ^ 8) & 15; // first element (our high nibble) -> ORT low nibble
    const lo = (c & 15) ^ 8;
    B[i] = (lo << 4) | hi;
  }
  const scales = new Float32Array(p.scales.length);
  const u = new Uint32Array(scales.buffer);
  for (let i = 0; i < scales.length; i++) u[i] = p.scales[i] << 16;
  return { B, scales };
}

const FORMATS = ['int8', 'int4', 'kmeans4', 'kmeans2', 'bin1'];
const ACTS = [false, true]; // act8: int16 / int8 activations
const LUT_FORMATS = ['kmeans2', 'bin1']; // also run through the lookup-table kernel
const actName = (act8: boolean): string => (act8 ? 'int8 act' : 'int16 act');

/** One timed packed-kernel row: format, activation mode, path of the packed kernel family. */
interface Variant {
  f: string;
  act8: boolean;
  isa: string;
}

/** max |kernel - float64 dequantize-then-GEMV| over max |reference| */
function relErr(p: PackedMatrix, x: Float32Array, y: Float32Array): number {
  const W = dequantize(p);
  const K = p.cols;
  let scale = 0;
  let err = 0;
  const ref = new Float64Array(p.rows);
  for (let n = 0; n < p.rows; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += W[n * K + k] * x[k];
    ref[n] = s;
    scale = Math.max(scale, Math.abs(s));
  }
  for (let n = 0; n < p.rows; n++) err = Math.max(err, Math.abs(y[n] - ref[n]));
  return err / scale;
}

/** ORT session options: our thread count, and no spin-waiting of its pool after a run (it would steal our cores in the interleaved loop). */
const ORT_OPTS = (threads: number): Record<string, unknown> => ({
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
});

export async function benchPacked(env: PackedBenchEnv): Promise<void> {
  const n = env.native();
  if (!n) return;
  const threads = n.extras.getThreads();
  const ex = n.extras as NativeExtrasInternal;
  // implementations of the packed / LUT / bf16 families this CPU runs (avx512-ymm: a test path, not timed)
  const simd = (fam: KernelFamily): string[] => ex.familyPaths(fam).filter((p) => p !== 'generic' && p !== 'avx512-ymm');
  const isas = simd('packed').reverse(); // avx2 first
  const lutIsas = simd('packedLut').reverse();
  const bf16Isas = simd('bf16').reverse();
  const bestIsa = isas[isas.length - 1] ?? 'generic';
  const onPath =
    (fam: KernelFamily, isa: string, fn: () => void) =>
    (): void => {
      ex.setKernelPath(fam, isa);
      fn();
    };
  const restore = (): void => void ex.setIsa(ex.cpuInfo().best);
  env.note(`packed bench paths: packed ${isas.join(', ')}; packedLut ${lutIsas.join(', ')}; bf16 ${bf16Isas.join(', ')} (avx512-bf16 = vdpbf16ps; amx-bf16 = AMX tiles from 16 rows, so at batch 1 the vdpbf16ps kernel)`);
  const peak = env.measurePeak(n);
  const dram = threads === 1 ? peak.dramGBs1 : peak.dramGBs2;
  const ort = await loadOrt(env.note);
  const shapes: [number, number][] = env.quick ? [[4096, 4096]] : [[4096, 4096], [4096, 11008]];
  const rows: (string | number)[][] = [];
  const readNotes: string[] = [];
  let ortOverheadMs = NaN;
  if (ort) {
    // per-call overhead of an async ORT run: a 64x64 MatMulNBits
    const tiny = quantizeMatrix(env.randArray(64 * 64, 5), 64, 64, parseFormat('int4'), { name: 'tiny' });
    const tm = toMatMulNBits(tiny);
    const s = await ort.InferenceSession.create(matMulNBitsModel(1, 64, 64, 64, tm.B, tm.scales, 0), ORT_OPTS(threads));
    const feed = { A: new ort.Tensor('float32', env.randArray(64, 6), [1, 64]) };
    let best = Infinity;
    for (let i = 0; i < 2000; i++) {
      const t0 = env.now();
      await s.run(feed);
      best = Math.min(best, env.now() - t0);
    }
    ortOverheadMs = best * 1e3;
    await s.release?.();
  }
  for (const [K, N] of shapes) {
    const W = env.randArray(N * K, 21 + N);
    for (let i = 0; i < W.length; i++) W[i] *= 0.05;
    const x = env.randArray(K, 22);
    const y = new Float32Array(N);
    const packed = new Map<string, PackedMatrix>();
    for (const f of FORMATS) packed.set(f, quantizeMatrix(W, N, K, parseFormat(f), { name: `bench.${f}`, maxSamples: 65536 }));
    const call =
      (p: PackedMatrix, act8: boolean) =>
      (): void =>
        n.kernels.packedMatmul(1, N, K, x, 0, p.codes, p.format.bits, p.levels, p.scales, true, p.format.blockSize, y, 0, act8);
    const lutLayouts = LUT_FORMATS.map((f) => {
      const p = packed.get(f)!;
      return packedLutLayout(N, K, p.format.bits, p.format.blockSize, p.codes, p.scales, (bytes) => n.kernels.weightBuffer(bytes)); // as PackedLinear does
    });
    const callLut = (i: number) => {
      const p = packed.get(LUT_FORMATS[i])!;
      const L = lutLayouts[i];
      return (): void => n.kernels.packedLutMatmul(1, N, K, x, 0, L.codes, p.format.bits, p.levels, L.scales, p.format.blockSize, y, 0);
    };
    const errs = new Map<string, number>();
    if (K === 4096 && N === 4096) {
      for (const f of ['int4', 'kmeans4', ...LUT_FORMATS]) {
        for (const a of ACTS) {
          for (const isa of a ? isas : ['avx2']) {
            onPath('packed', isa, call(packed.get(f)!, a))();
            errs.set(`${f} ${actName(a)}${a ? ` ${isa}` : ''}`, relErr(packed.get(f)!, x, y));
          }
        }
      }
      LUT_FORMATS.forEach((f, i) => {
        callLut(i)();
        errs.set(`${f} LUT`, relErr(packed.get(f)!, x, y));
      });
    }
    const variants: Variant[] = FORMATS.flatMap((f) => ACTS.flatMap((act8) => (act8 ? isas : ['avx2']).map((isa) => ({ f, act8, isa }))));
    const lutVariants = LUT_FORMATS.flatMap((f, li) => lutIsas.map((isa) => ({ f, li, isa })));
    // bf16-weight GEMV, f32 and bf16 activations, per path
    const w16 = toBf16(W);
    const bf16Variants = [false, true].flatMap((xBf16) => bf16Isas.filter((i) => xBf16 || (i !== 'avx512-bf16' && i !== 'amx-bf16')).map((isa) => ({ xBf16, isa })));
    // streaming reads timed in the same loop: a 64 MiB buffer and one of each packed matrix's size
    const big = env.randArray(16 * 2 ** 20, 7);
    const own = FORMATS.map((f) => new Float32Array(Math.ceil(formatSize(packed.get(f)!.format, N, K).totalBytes / 4)).fill(1));
    const fns = [
      (): void => n.kernels.gemm(1, false, true, 1, N, K, 1, x, 0, K, 0, W, 0, K, 0, 0, y, 0, N, 0),
      ...variants.map((v) => onPath('packed', v.isa, call(packed.get(v.f)!, v.act8))),
      ...lutVariants.map((v) => onPath('packedLut', v.isa, callLut(v.li))),
      (): void => void n.extras.readSum(big, threads),
      ...own.map((b) => (): void => void n.extras.readSum(b, threads)),
      ...bf16Variants.map((v) => onPath('bf16', v.isa, () => n.kernels.bf16Matmul(1, N, K, x, 0, w16, y, 0, v.xBf16))),
    ];
    const t = env.timeInterleaved(fns, { maxReps: 60, budgetSec: env.quick ? 6 : 12 });
    restore();
    const iLut = variants.length + 1; // first LUT timing
    const iBig = iLut + lutVariants.length; // the 64 MiB read, then the own-size reads
    const iBf16 = iBig + 1 + own.length;
    const bw = (big.length * 4) / t[iBig].best / 1e9;
    const f32Bytes = N * K * 4;
    const tF32 = t[0].best;
    env.emit({ bench: 'packed', case: `1x${K} . ${K}x${N} f32`, value: f32Bytes / tF32 / 1e9, unit: 'GB/s', peer: null, ratio_vs_peer: null, ms: tF32 * 1e3, median_ms: t[0].median * 1e3, bytes: f32Bytes, pct_of_read_64MiB: (100 * f32Bytes) / tF32 / 1e9 / bw, threads });
    rows.push([`${K}x${N} f32`, ex.cpuInfo().paths.gemm, 32, tF32 * 1e3, f32Bytes / tF32 / 1e9, `${env.fmt((100 * f32Bytes) / tF32 / 1e9 / bw)}%`, `${env.fmt((100 * f32Bytes) / tF32 / 1e9 / dram)}%`, '-', '1.00x', '-', '-']);
    bf16Variants.forEach((v, i) => {
      const bytes = N * K * 2;
      const sec = t[iBf16 + i].best;
      const gbs = bytes / sec / 1e9;
      const an = v.xBf16 ? 'bf16 act' : 'f32 act';
      env.emit({ bench: 'packed', case: `1x${K} . ${K}x${N} bf16 ${an} ${v.isa}`, isa: v.isa, value: gbs, unit: 'GB/s', peer: null, ratio_vs_peer: null, ms: sec * 1e3, median_ms: t[iBf16 + i].median * 1e3, bytes, speedup_vs_f32: tF32 / sec, pct_of_read_64MiB: (100 * gbs) / bw, pct_of_read_dram: (100 * gbs) / dram, threads });
      // amx-bf16 hands fewer than 16 rows to the avx512-bf16 kernel: this GEMV row times that hand-off
      const isaLabel = v.isa === 'avx512-bf16' ? 'avx512-bf16 (vdpbf16ps)' : v.isa === 'amx-bf16' ? 'amx-bf16 (M=1: vdpbf16ps)' : v.isa;
      rows.push([`${K}x${N} bf16 ${an}`, isaLabel, 16, sec * 1e3, gbs, `${env.fmt((100 * gbs) / bw)}%`, `${env.fmt((100 * gbs) / dram)}%`, '-', `${(tF32 / sec).toFixed(2)}x`, '-', '-']);
    });
    // ORT peer, interleaved with our int4 in one async loop
    const ortMs: Record<number, number> = {};
    const oursInOrtLoop: Record<string, number> = {}; // by activation mode
    let ortMaxRelDiff = NaN;
    if (ort) {
      const p4 = packed.get('int4')!;
      const m = toMatMulNBits(p4);
      const sessions: [number, OrtSession][] = [];
      for (const acc of [0, 4]) {
        sessions.push([acc, await ort.InferenceSession.create(matMulNBitsModel(1, N, K, 64, m.B, m.scales, acc), ORT_OPTS(threads))]);
      }
      const feed = { A: new ort.Tensor('float32', x, [1, K]) };
      const ours = onPath('packed', 'avx2', call(p4, false));
      const ours8 = onPath('packed', bestIsa, call(p4, true));
      const ours8avx2 = onPath('packed', 'avx2', call(p4, true));
      ours();
      const ref = Float32Array.from(y);
      const out0 = (await sessions[0][1].run(feed)).Y.data as Float32Array;
      ortMaxRelDiff = 0;
      let scale = 0;
      for (let i = 0; i < N; i++) scale = Math.max(scale, Math.abs(ref[i]));
      for (let i = 0; i < N; i++) ortMaxRelDiff = Math.max(ortMaxRelDiff, Math.abs(out0[i] - ref[i]) / scale);
      const best: Record<string, number> = { ours: Infinity, ours8: Infinity, ours8avx2: Infinity };
      for (const [acc] of sessions) best[acc] = Infinity;
      const t0 = env.now();
      for (let rep = 0; rep < 200 && (rep < 10 || env.now() - t0 < (env.quick ? 1.5 : 4)); rep++) {
        let s = env.now();
        ours();
        best.ours = Math.min(best.ours, env.now() - s);
        s = env.now();
        ours8();
        best.ours8 = Math.min(best.ours8, env.now() - s);
        s = env.now();
        ours8avx2();
        best.ours8avx2 = Math.min(best.ours8avx2, env.now() - s);
        for (const [acc, sess] of sessions) {
          s = env.now();
          await sess.run(feed);
          best[acc] = Math.min(best[acc], env.now() - s);
        }
      }
      for (const [acc, sess] of sessions) {
        ortMs[acc] = best[acc] * 1e3;
        await sess.release?.();
      }
      oursInOrtLoop[`${actName(false)} avx2`] = best.ours * 1e3;
      oursInOrtLoop[`${actName(true)} ${bestIsa}`] = best.ours8 * 1e3;
      oursInOrtLoop[`${actName(true)} avx2`] = best.ours8avx2 * 1e3;
      restore();
    }
    variants.forEach(({ f, act8, isa }, i) => {
      const p = packed.get(f)!;
      const an = actName(act8);
      const errKey = `${f} ${an}${act8 ? ` ${isa}` : ''}`;
      const sz = formatSize(p.format, N, K);
      const bytes = sz.totalBytes;
      const sec = t[i + 1].best;
      const gbs = bytes / sec / 1e9;
      const footGbs = (own[FORMATS.indexOf(f)].length * 4) / t[iBig + 1 + FORMATS.indexOf(f)].best / 1e9;
      const ours4 = oursInOrtLoop[`${an} ${isa}`];
      const isInt4 = f === 'int4' && ort !== null && ours4 !== undefined;
      const ortBest = isInt4 ? Math.min(ortMs[0], ortMs[4]) : NaN;
      const ratio = isInt4 ? ortBest / ours4 : null;
      env.emit({
        bench: 'packed',
        case: `1x${K} . ${K}x${N} ${f} ${an} ${isa}`,
        isa,
        value: gbs,
        unit: 'GB/s',
        peer: isInt4 ? 'onnxruntime MatMulNBits 4-bit (best of accuracy_level 0 and 4)' : null,
        ratio_vs_peer: ratio,
        ms: sec * 1e3,
        median_ms: t[i + 1].median * 1e3,
        bytes,
        bits_per_weight: sz.bitsPerWeight,
        speedup_vs_f32: tF32 / sec,
        pct_of_read_64MiB: (100 * gbs) / bw,
        pct_of_read_dram: (100 * gbs) / dram,
        footprint_read_GBs: footGbs,
        pct_of_read_footprint: (100 * gbs) / footGbs,
        threads,
        ...(isInt4
          ? { ort_acc0_ms: ortMs[0], ort_acc4_ms: ortMs[4], ours_ms_in_ort_loop: ours4, ort_call_overhead_ms: ortOverheadMs, ort_max_rel_diff: ortMaxRelDiff }
          : {}),
        ...(errs.has(errKey) ? { max_rel_err_vs_f64: errs.get(errKey) } : {}),
      });
      rows.push([
        `${K}x${N} ${f} ${an}`,
        isa,
        sz.bitsPerWeight,
        sec * 1e3,
        gbs,
        `${env.fmt((100 * gbs) / bw)}%`,
        `${env.fmt((100 * gbs) / dram)}%`,
        `${env.fmt((100 * gbs) / footGbs)}% of ${env.fmt(footGbs)}`,
        `${(tF32 / sec).toFixed(2)}x`,
        '-',
        isInt4 ? `ORT ${env.fmt(ortMs[0])} / ${env.fmt(ortMs[4])} ms (acc 0 / 4) vs ours ${env.fmt(ours4)} ms: ${ratio!.toFixed(2)}x` : '-',
      ]);
      if (!act8 || isa !== bestIsa) return;
      // the lookup-table kernel on the same weights (int8 tables), per path, beside the decode kernel's int8 row of the best path
      lutVariants.forEach((lv, li) => {
        if (lv.f !== f) return;
        const lsec = t[iLut + li].best;
        const lgbs = bytes / lsec / 1e9;
        env.emit({
          bench: 'packed',
          case: `1x${K} . ${K}x${N} ${f} LUT ${lv.isa}`,
          isa: lv.isa,
          value: lgbs,
          unit: 'GB/s',
          peer: null,
          ratio_vs_peer: null,
          ms: lsec * 1e3,
          median_ms: t[iLut + li].median * 1e3,
          bytes,
          bits_per_weight: sz.bitsPerWeight,
          speedup_vs_f32: tF32 / lsec,
          speedup_vs_decode_int8: sec / lsec,
          pct_of_read_64MiB: (100 * lgbs) / bw,
          pct_of_read_dram: (100 * lgbs) / dram,
          footprint_read_GBs: footGbs,
          pct_of_read_footprint: (100 * lgbs) / footGbs,
          threads,
          ...(errs.has(`${f} LUT`) ? { max_rel_err_vs_f64: errs.get(`${f} LUT`) } : {}),
        });
        rows.push([
          `${K}x${N} ${f} LUT`,
          lv.isa,
          sz.bitsPerWeight,
          lsec * 1e3,
          lgbs,
          `${env.fmt((100 * lgbs) / bw)}%`,
          `${env.fmt((100 * lgbs) / dram)}%`,
          `${env.fmt((100 * lgbs) / footGbs)}% of ${env.fmt(footGbs)}`,
          `${(tF32 / lsec).toFixed(2)}x`,
          `${(sec / lsec).toFixed(2)}x`,
          '-',
        ]);
      });
    });
    readNotes.push(`${K}x${N}: read ${env.fmt(bw)} GB/s at 64 MiB (same loop)`);
    if (errs.size > 0) env.note(`${K}x${N}: max |kernel - float64 reference| / max |reference|: ${[...errs].map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
  }
  env.table(
    `Packed GEMV y = x W^T, batch 1, ${threads} threads (${readNotes.join('; ')}; ${env.fmt(dram)} GB/s at 512 MiB, measured before)`,
    ['matrix / format', 'ISA', 'bits/w', 'ms', 'GB/s packed', '% of 64 MiB read', '% of DRAM read (512 MiB)', '% of read at own size (GB/s)', 'vs f32', 'LUT vs decode (int8 act, best path)', 'ONNX Runtime MatMulNBits'],
    rows,
  );
  if (ort) env.note(`ONNX Runtime ${ort.env.versions?.node ?? ''}: async call overhead ${env.fmt(ortOverheadMs * 1e3)} us (64x64 model); ratio = ORT best ms / ours ms, > 1 means ours is faster`);
}
