/**
 * The one narrow interface between the tensor core and its compute kernels.
 *
 * Two implementations exist: the native C++ addon (`native/`, AVX2/FMA with a generic fallback)
 * and the pure-TypeScript twin (`js.ts`), which is also the reference every native kernel is
 * tested against. All arrays are row-major f32 unless stated; integer arguments are element
 * counts/offsets (never bytes). Kernels write every element of their outputs (callers may pass
 * poisoned buffers) unless the doc says "accumulates" (`+=`).
 *
 * Arguments are positional on purpose: N-API calls with plain numbers and typed arrays cost
 * well under a microsecond; option objects would cost more than small kernels themselves.
 */

/** Elementwise unary ops. Numeric codes are shared with the native addon. */
export enum UnaryOp {
  Neg = 0,
  Exp = 1,
  Log = 2,
  Sqrt = 3,
  Rsqrt = 4,
  Silu = 5,
  /** exact GELU, 0.5 x (1 + erf(x / sqrt 2)) */
  Gelu = 6,
  /** tanh approximation of GELU, as in GPT-2 */
  GeluTanh = 7,
  Tanh = 8,
  /** elu with alpha = 1 */
  Elu = 9,
  Relu = 10,
  Sigmoid = 11,
  Abs = 12,
  Square = 13,
  Recip = 14,
}

/** Elementwise binary ops with broadcasting (via strides). */
export enum BinaryOp {
  Add = 0,
  Sub = 1,
  Mul = 2,
  Div = 3,
  Max = 4,
  Min = 5,
  /** 1 where a > b else 0 */
  Gt = 6,
  /** 1 where a == b else 0 */
  Eq = 7,
}

export enum ReduceOp {
  Sum = 0,
  Max = 1,
}

/**
 * Shape and masking of one attention call (the kernels' `attention`, `attentionScoresSize` and
 * `attentionBackward` take the same one):
 *   q [B, Hq, Tq, D], k/v [B, Hkv, Tk, D], out [B, Hq, Tq, D], lse [B, Hq, Tq] (log-sum-exp of
 *   the scaled, masked scores; -Infinity for a fully masked row, whose output is 0).
 * Grouped-query: Hq % Hkv == 0, query head h uses kv head floor(h / (Hq / Hkv)).
 * Position of query row i is qPos ? qPos[b*Tq + i] : i + (Tk - Tq); of key j: kPos ? kPos[b*Tk + j] : j.
 * Key j is visible to query i when all hold:
 *   causal:      kp <= qp
 *   window > 0:  qp - kp < window          (sliding window; combined with causal)
 *   segments:    qSeg[b*Tq + i] == kSeg[b*Tk + j]   (when both non-null; document reset)
 *   mask:        mask[(b*Tq + i)*Tk + j] != 0      (when non-null; arbitrary extra mask)
 */
export interface AttentionArgs {
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  /** multiplies q.k before the softmax */
  scale: number;
  causal: boolean;
  /** sliding window (0 = unlimited) */
  window: number;
  qPos: Int32Array | null;
  kPos: Int32Array | null;
  qSeg: Int32Array | null;
  kSeg: Int32Array | null;
  mask: Uint8Array | null;
}

export interface Kernels {
  readonly name: 'js' | 'native';

  /**
   * Batched GEMM: for b in [0, batch):
   *   C_b = alpha * op(A_b) @ op(B_b) + beta * C_b
   * where A_b = A[aOff + b*strideA ...], op(A_b) is M x K (stored K x M with leading dim lda
   * when transA), op(B_b) is K x N (stored N x K when transB), C_b is M x N with leading dim ldc.
   * strideA/strideB may be 0 (broadcast one matrix over the batch). When beta == 0, C is not
   * read (NaN poison in C must not propagate). M == 1 should take a GEMV path.
   */
  gemm(
    batch: number,
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    aOff: number,
    lda: number,
    strideA: number,
    B: Float32Array,
    bOff: number,
    ldb: number,
    strideB: number,
    beta: number,
    C: Float32Array,
    cOff: number,
    ldc: number,
    strideC: number,
  ): void;

  /** out[i] = f(x[i]) for i < n. out may alias x. */
  unary(op: UnaryOp, x: Float32Array, out: Float32Array, n: number): void;

  /**
   * gx[i] = gy[i] * f'(x[i]) (accumulate=false) or gx[i] += gy[i] * f'(x[i]) (accumulate=true).
   * y = f(x) is passed too (ops like exp, tanh, sigmoid use it).
   */
  unaryBackward(
    op: UnaryOp,
    x: Float32Array,
    y: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    n: number,
    accumulate: boolean,
  ): void;

  /**
   * SwiGLU's gate product out[i] = silu(gate[i]) * up[i] for i < n: the same values as unary
   * Silu into a buffer s and binary Mul (s * up), in one pass.
   */
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void;

  /**
   * Backward of swiglu for i < n: gUp[i] = g[i] * silu(gate[i]) and gGate[i] = (g[i] * up[i]) *
   * silu'(gate[i]): the same values as Mul's two gradient products and unaryBackward Silu.
   */
  swigluBackward(gate: Float32Array, up: Float32Array, g: Float32Array, gGate: Float32Array, gUp: Float32Array, n: number): void;

  /**
   * Strided broadcasting binary op with contiguous output:
   *   out[idx] = a[aOff + sum(idx_d * aStrides[d])] OP b[bOff + sum(idx_d * bStrides[d])]
   * over the full index space of `shape` (rank = shape.length, 0..8). A stride of 0 broadcasts.
   * out may alias a when a is contiguous with the output's shape (in-place accumulate).
   */
  binary(
    op: BinaryOp,
    shape: Int32Array,
    a: Float32Array,
    aOff: number,
    aStrides: Int32Array,
    b: Float32Array,
    bOff: number,
    bStrides: Int32Array,
    out: Float32Array,
  ): void;

  /** Strided copy into a contiguous output (materialises views). */
  copyStrided(shape: Int32Array, x: Float32Array, xOff: number, xStrides: Int32Array, out: Float32Array): void;

  /** out[i] = a[i] * alpha + beta (also used for fill when alpha == 0: a is not read then). */
  affine(a: Float32Array, out: Float32Array, n: number, alpha: number, beta: number): void;

  /** y[i] += alpha * x[i] */
  axpy(n: number, alpha: number, x: Float32Array, y: Float32Array): void;

  /**
   * Reduce a contiguous [outer, len, inner] array over its middle axis into out [outer, inner].
   * Sum or max. For max, argmax (if non-null) receives the index along the axis (first max).
   */
  reduce(op: ReduceOp, x: Float32Array, out: Float32Array, outer: number, len: number, inner: number, argmax: Int32Array | null): void;

  /** Sum of squares of x[0..n) in float64 accumulation (for gradient norms). */
  sumSquares(x: Float32Array, n: number): number;

  /** Row softmax (or log-softmax when log) over the last axis of a [rows, cols] array. */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void;

  /**
   * Backward of row softmax / log-softmax given y (its output) and gy:
   *   softmax:     gx = y * (gy - sum(gy * y))
   *   log-softmax: gx = gy - exp(y) * sum(gy)
   * accumulate: gx += instead of =.
   */
  softmaxBackward(y: Float32Array, gy: Float32Array, gx: Float32Array, rows: number, cols: number, log: boolean, accumulate: boolean): void;

  /**
   * RMSNorm over the last axis: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
   * rstd [rows] is written for the backward pass.
   */
  rmsnorm(x: Float32Array, w: Float32Array, out: Float32Array, rstd: Float32Array, rows: number, cols: number, eps: number): void;

  /** RMSNorm backward: gx written (or accumulated), gw accumulated (gw may be null when frozen). */
  rmsnormBackward(
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    gw: Float32Array | null,
    rows: number,
    cols: number,
    accumulate: boolean,
  ): void;

  /**
   * LayerNorm over the last axis: out = (x - mean) * rstd * w + b. w/b may be null (identity).
   * mean/rstd [rows] written for the backward pass.
   */
  layernorm(
    x: Float32Array,
    w: Float32Array | null,
    b: Float32Array | null,
    out: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;

  /** LayerNorm backward: gx written (or accumulated); gw, gb accumulated when non-null. */
  layernormBackward(
    x: Float32Array,
    w: Float32Array | null,
    mean: Float32Array,
    rstd: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    gw: Float32Array | null,
    gb: Float32Array | null,
    rows: number,
    cols: number,
    accumulate: boolean,
  ): void;

  /**
   * Row gather: out[i, :] = table[ids[i], :] for i < n, rows of width dim.
   * ids are validated by the caller (0 <= id < table rows).
   */
  gather(table: Float32Array, ids: Int32Array, out: Float32Array, n: number, dim: number): void;

  /** Scatter-add (gather backward): gtable[ids[i], :] += gy[i, :]. */
  scatterAdd(gy: Float32Array, ids: Int32Array, gtable: Float32Array, n: number, dim: number): void;

  /**
   * Rotary embedding, neox "rotate-half" layout, on x [rows, heads, headDim] where row r has
   * position pos[r]. cos/sin are tables [maxPos, headDim/2] (cos(p * inv_freq_i)).
   * Only the first rotDim (even, <= headDim) features rotate; the rest are copied.
   *   out[i]        = x[i] * c - x[i + h] * s
   *   out[i + h]    = x[i + h] * c + x[i] * s          (h = rotDim / 2, i < h)
   * inverse=true rotates by -angle (the backward pass). out may alias x.
   * seqLen T > 0 (dividing rows = B * T): one side is head-major [B, heads, T, headDim] instead:
   * the output when toHeadMajor (x token-major), else the input (out token-major); the values
   * are those of the token-major call and a permute copy. out must not alias x then.
   */
  rope(
    x: Float32Array,
    out: Float32Array,
    pos: Int32Array,
    cos: Float32Array,
    sin: Float32Array,
    rows: number,
    heads: number,
    headDim: number,
    rotDim: number,
    inverse: boolean,
    seqLen?: number,
    toHeadMajor?: boolean,
  ): void;

  /**
   * Scaled-dot-product attention forward: q, k, v, out and lse laid out as `a` describes
   * (see AttentionArgs), `out` and `lse` written. `scores`: see attentionScoresSize.
   */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, a: AttentionArgs, scores?: Float32Array | null): void;

  /**
   * Floats of the stored scores of an attention call with these arguments (0: none kept). A
   * training caller may pass an array of at least this length as `scores` to `attention` and the
   * same array, unchanged, to `attentionBackward`: the forward writes the scaled, masked scores it
   * computes there and the backward reads them instead of computing them again. The results are
   * the same with and without; the layout is the backend's own (the JS backend keeps none).
   */
  attentionScoresSize(a: AttentionArgs): number;

  /**
   * Attention backward (same arguments as the forward). Given out, lse and gOut, accumulates
   * (+=) into gq, gk, gv (callers zero them first when they want plain gradients). `scores`: the
   * array the forward filled (see attentionScoresSize), or null.
   */
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    lse: Float32Array,
    gOut: Float32Array,
    gq: Float32Array,
    gk: Float32Array,
    gv: Float32Array,
    a: AttentionArgs,
    scores?: Float32Array | null,
  ): void;

  /**
   * Fused cross-entropy over rows of logits [rows, cols] with integer targets.
   * losses[r] = lse(logits[r]) - logits[r, t] (0 when t == ignoreIndex); lse[r] saved.
   * Returns the number of rows that were not ignored. Targets are validated by the caller.
   */
  crossEntropy(
    logits: Float32Array,
    targets: Int32Array,
    losses: Float32Array,
    lse: Float32Array,
    rows: number,
    cols: number,
    ignoreIndex: number,
  ): number;

  /**
   * Cross-entropy backward: glogits[r, :] (+)= gLoss[r] * (softmax(logits[r]) - onehot(t)),
   * zero rows for ignored targets (when not accumulating).
   */
  crossEntropyBackward(
    logits: Float32Array,
    targets: Int32Array,
    lse: Float32Array,
    gLoss: Float32Array,
    glogits: Float32Array,
    rows: number,
    cols: number,
    ignoreIndex: number,
    accumulate: boolean,
  ): void;

  /**
   * One fused AdamW step on n parameters (decoupled weight decay, bias-corrected):
   *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
   *   p -= lr * (m / bc1) / (sqrt(v / bc2) + eps) + lr * wd * p
   * bc1 = 1 - b1^step, bc2 = 1 - b2^step are passed in. With gradScale (not 1), g is read as
   * g * gradScale rounded to f32, the value affine(g, g, n, gradScale, 0) would store: gradient
   * clipping's scaling fused into the update (one pass fewer over the gradients, same result).
   */
  adamw(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    n: number,
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
    gradScale?: number,
  ): void;

  /**
   * Matmul straight from packed weights (src/compress): for m < M, n < N
   *   out[outOff + m*N + n] = sum_k x[xOff + m*K + k] * W[n, k],
   *   W[n, k] = scale[n, floor(k / blockSize)] * levels[code(n, k)]
   * codes: N rows of K*bits/8 bytes, each an MSB-first stream of `bits`-bit codes (bits 1, 2, 3,
   * 4 or 8); levels: 2^bits floats; scales: [N, K/blockSize] bf16 (scaleBf16) or f16 bit patterns;
   * blockSize: a multiple of 8 dividing K. Computed as in native/kernels.h (PackedArgs): x rounded
   * to int16 per group of 64 (or blockSize when 64 does not divide it), levels to 13-bit fixed
   * point unless they are integers, exact integer group sums, float32 across groups.
   * act8 (default false) selects int8 activations instead: x rounded per group to
   * nearbyint(x * 127/absmax), levels to int8 (exact when integers with |L| <= 128, else
   * nearbyint(L * 64/max|L|)); same exact integer group sums and float32 combination.
   */
  packedMatmul(
    M: number,
    N: number,
    K: number,
    x: Float32Array,
    xOff: number,
    codes: Uint8Array,
    bits: number,
    levels: Float32Array,
    scales: Uint16Array,
    scaleBf16: boolean,
    blockSize: number,
    out: Float32Array,
    outOff: number,
    act8?: boolean,
  ): void;

  /**
   * Activation-side lookup-table matmul for 1- and 2-bit codes, int8-level precision (native/kernels.h,
   * PackedLutArgs; docs/compression.md "Lookup-table kernel"): per 4/bits activations the 16 partial
   * sums over the int8 levels, rounded to int8 per group of 64 activations (scale max|T|/127),
   * looked up by the weights' nibbles; exact integer sums per group, float32 across groups.
   * codes / scales: the row-interleaved layout of `packedLutLayout` (js_packed_lut.ts), bf16 scales;
   * blockSize: a multiple of 64 dividing K.
   */
  packedLutMatmul(
    M: number,
    N: number,
    K: number,
    x: Float32Array,
    xOff: number,
    codes: Uint8Array,
    bits: number,
    levels: Float32Array,
    scales: Uint16Array,
    blockSize: number,
    out: Float32Array,
    outOff: number,
  ): void;

  /**
   * A zeroed byte buffer for a long-lived weight layout that a kernel streams on every call (the
   * codes and scales of `packedLutLayout`). Native backend on Linux, from 1 MiB on: its own
   * mapping, started on a 2 MiB boundary, its whole 2 MiB pages marked for transparent huge pages
   * (madvise MADV_HUGEPAGE: fewer TLB misses on the cold code stream; same contents and results);
   * otherwise, and in the TS backend, a plain Uint8Array.
   */
  weightBuffer(bytes: number): Uint8Array;

  /**
   * bf16-weight matmul (native/kernels.h, Bf16Args): for m < M, n < N
   *   out[outOff + m*N + n] = sum_k xr[m*K + k] * f32(w[n*K + k])
   * w: [N, K] bf16 bit patterns (widened exactly). xBf16 false: xr = x[xOff ..] (float32
   * activations); true: xr = x rounded to bf16 (nearest even), every product exact, the function
   * of vdpbf16ps (which the native AVX-512 path runs when the CPU has AVX512_BF16). float32
   * accumulation; the TS twin and the portable kernel sum in ascending k (bit-identical), SIMD paths
   * in lanes (within (K + 1) 2^-24 sum |xr w| of the exact sum, as every order).
   */
  bf16Matmul(M: number, N: number, K: number, x: Float32Array, xOff: number, w: Uint16Array, out: Float32Array, outOff: number, xBf16: boolean): void;

  /**
   * Block quantizer of one weight matrix (the rules of src/compress/quantize.ts; native/kernels.h,
   * QuantArgs): w [rows, cols] -> scales [rows, cols/blockSize] (bf16 or f16 bit patterns of the
   * block statistic: absmax, mean|w| (absmean, meanstep), floored at eps, divided by 2^(bits-1) - 1
   * for int kinds unless meanstep, rounded to float32 then to the 16-bit type, nearest even) and,
   * when codes is non-null, the codes packed per row as an MSB-first `bits`-bit stream (rows of
   * cols*bits/8 bytes, which must be whole). kind (QuantKind): 0 int (round half even of
   * clamp(w/s, +-qmax), two's complement), 1 kmeans (nearest centroid of w/s by the ascending
   * midpoints `mid`, a tie takes the lower), 2 bin (w - mu >= 0; mu = `centre`, or each block's
   * mean when centre is NaN), 3 ternary (round half even of clamp(w/s, +-1), plus 1); s is the
   * stored scale, w/s is 0 when s is 0. All float64, one fixed order: the twin and the native kernel
   * agree bit for bit at any thread count (rows are split across threads).
   * Returns the index of the first non-finite weight (nothing written) or -1.
   */
  quantizeBlocks(
    w: Float32Array,
    rows: number,
    cols: number,
    kind: number,
    bits: number,
    blockSize: number,
    scaleMode: number,
    scaleBf16: boolean,
    eps: number,
    mid: Float64Array | null,
    centre: number,
    codes: Uint8Array | null,
    scales: Uint16Array,
  ): number;

  /**
   * Lloyd iterations of the scalar weighted k-means of src/compress/kmeans.ts on n samples x with
   * weights wt, starting from the k ascending centroids c (updated in place): assign each sample to
   * the nearest centroid (bucketize by midpoints), c[j] = sum(wt x) / sum(wt) over its samples (kept
   * when it has none), cumulative max; stop after an iteration where at most tol * n assignments
   * changed, or after maxIter. assign [n] holds the previous assignments (-1 at first). float64, samples
   * in ascending order (single-threaded: the sums' order is the result). Returns the iterations run.
   */
  kmeansLloyd(x: Float64Array, wt: Float64Array, n: number, c: Float64Array, k: number, maxIter: number, tol: number, assign: Int32Array): number;

  /** out[i] = the float32 value of the bf16 bit pattern src[i] for i < n (exact; NaN payloads kept). */
  widenBf16(src: Uint16Array, out: Float32Array, n: number): void;
}

/** What the native addon found out about the CPU and which kernel path each family uses. */
export interface NativeCpuInfo {
  /** "x86_64", "aarch64", ... */
  arch: string;
  /** cpuid vendor ("GenuineIntel", "AuthenticAMD"); "" off x86. */
  vendor: string;
  /** cpuid brand string; "" off x86. */
  brand: string;
  /** x86 cpuid family (base + extended family, e.g. 0x19 = AMD Zen 3 / Zen 4); 0 off x86. */
  family: number;
  /** Features present and enabled by the OS (e.g. "avx2", "avx512f", "avx512vnni", "amx-tile", "asimddp"). */
  features: string[];
  /** Kernel paths (ISA levels) this CPU and build can run, lowest first: "generic", "avx2", "avx512", "neon". */
  isas: string[];
  /** The highest of `isas` (the default). */
  best: string;
  /** The level in force (TFREE_ISA or setIsa cap it). */
  isa: string;
  /**
   * Implementation chosen per kernel family: ops, gemm, packed, packedLut, boxte, bf16, e.g. { ops:
   * "avx512", gemm: "avx2" (AMD Zen 4), packed: "avx512-vnni", packedLut: "avx512", boxte: "avx512", bf16: "avx512-bf16" }.
   */
  paths: Record<string, string>;
  /** Why TFREE_ISA (or TFREE_SIMD) could not be honoured at load, else "". */
  envError: string;
  /** Linux granted this process the AMX tile state. */
  amxPermitted: boolean;
}

/** Extra entry points of the native addon used by benchmarks and diagnostics only. */
export interface NativeExtras {
  /** Threads the pool uses (from TFREE_THREADS, default: hardware concurrency). */
  getThreads(): number;
  /** Change the pool size at run time (1 disables threading). */
  setThreads(n: number): void;
  /** The path of the ops family: "avx512", "avx2", "generic", ... (the GEMM's: cpuInfo().paths.gemm) */
  simd(): string;
  /** CPU features and the path chosen per kernel family. */
  cpuInfo(): NativeCpuInfo;
  /**
   * Caps the kernel paths at `isa` ("generic", "avx2", "avx512", "neon"; one of cpuInfo().isas, else
   * a RangeError); every family then uses its best implementation at or below it. Returns simd().
   */
  setIsa(isa: string): string;
  /**
   * Runs `iters` rounds of 12 independent FMA chains on `threads` threads with the ops table of
   * `isa` (default: the one in force); returns GFLOP/s.
   */
  fmaPeak(iters: number, threads: number, isa?: string): number;
  /**
   * Runs `iters` rounds of 16 independent int8 dot-product chains (vpdpbusd) per thread with the
   * widest such instruction the CPU has; returns its name ("avx512vnni" or "avxvnni") and GOP/s
   * (a multiply and an add count as 2 ops), or null when the CPU has none.
   */
  int8Peak(iters: number, threads: number): { isa: string; gops: number } | null;
  /** Streams through x summing it (read bandwidth probe) with `threads` threads; returns the sum. */
  readSum(x: Float32Array, threads: number): number;
  /** Tries to dlopen OpenBLAS; returns its name/version string or null when unavailable. */
  openblasLoad(): string | null;
  /** cblas_sgemm row-major, no transposes, through the dlopen'd OpenBLAS (threads via openblas_set_num_threads). */
  openblasSgemm(M: number, N: number, K: number, A: Float32Array, B: Float32Array, C: Float32Array, threads: number): void;
  /** cblas_sgemv row-major y = A x (A is M x N). */
  openblasSgemv(M: number, N: number, A: Float32Array, x: Float32Array, y: Float32Array, threads: number): void;
  /** A no-op N-API call taking one typed array (call-overhead probe). */
  noop(x: Float32Array): void;
}
