/**
 * Pure-TypeScript GEMM: op(A) and op(B) are packed into 4-row / 4-column panels (zero-padded),
 * then a 4x4 register tile accumulates 16 products per k step in local (float64) variables.
 * Rows of one output (M == 1, or tiny M with B stored [N, K]) take a dot-product path that needs
 * no packing. Semantics as `Kernels.gemm` (one batch item).
 */

const MR = 4;
const NR = 4;

let packA: Float64Array = new Float64Array(0);
let packB: Float64Array = new Float64Array(0);

function ensure(buf: Float64Array, n: number): Float64Array {
  return buf.length >= n ? buf : new Float64Array(Math.max(n, buf.length * 2));
}

/** Packs op(A) (M x K) into panels of MR rows: panel p holds [k][r] for rows p*MR + r. */
function packOpA(transA: boolean, M: number, K: number, A: Float32Array, aOff: number, lda: number): Float64Array {
  const panels = Math.ceil(M / MR);
  packA = ensure(packA, panels * MR * K);
  const P = packA;
  for (let p = 0; p < panels; p++) {
    const base = p * MR * K;
    for (let r = 0; r < MR; r++) {
      const i = p * MR + r;
      if (i >= M) {
        for (let k = 0; k < K; k++) P[base + k * MR + r] = 0;
      } else if (transA) {
        for (let k = 0; k < K; k++) P[base + k * MR + r] = A[aOff + k * lda + i];
      } else {
        const row = aOff + i * lda;
        for (let k = 0; k < K; k++) P[base + k * MR + r] = A[row + k];
      }
    }
  }
  return P;
}

/** Packs op(B) (K x N) into panels of NR columns: panel q holds [k][c] for columns q*NR + c. */
function packOpB(transB: boolean, N: number, K: number, B: Float32Array, bOff: number, ldb: number): Float64Array {
  const panels = Math.ceil(N / NR);
  packB = ensure(packB, panels * NR * K);
  const P = packB;
  for (let q = 0; q < panels; q++) {
    const base = q * NR * K;
    for (let c = 0; c < NR; c++) {
      const j = q * NR + c;
      if (j >= N) {
        for (let k = 0; k < K; k++) P[base + k * NR + c] = 0;
      } else if (transB) {
        const row = bOff + j * ldb;
        for (let k = 0; k < K; k++) P[base + k * NR + c] = B[row + k];
      } else {
        for (let k = 0; k < K; k++) P[base + k * NR + c] = B[bOff + k * ldb + j];
      }
    }
  }
  return P;
}

function store(C: Float32Array, idx: number, v: number, alpha: number, beta: number): void {
  C[idx] = beta === 0 ? alpha * v : alpha * v + beta * C[idx];
}

/** Dot-product path: each output is a dot of a row of op(A) with a row of B stored [N, K]. */
function gemmRowsDot(
  transA: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  aOff: number,
  lda: number,
  B: Float32Array,
  bOff: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  cOff: number,
  ldc: number,
): void {
  const a = new Float64Array(K);
  for (let i = 0; i < M; i++) {
    if (transA) for (let k = 0; k < K; k++) a[k] = A[aOff + k * lda + i];
    else for (let k = 0; k < K; k++) a[k] = A[aOff + i * lda + k];
    for (let j = 0; j < N; j++) {
      const row = bOff + j * ldb;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let k = 0;
      for (; k + 3 < K; k += 4) {
        s0 += a[k] * B[row + k];
        s1 += a[k + 1] * B[row + k + 1];
        s2 += a[k + 2] * B[row + k + 2];
        s3 += a[k + 3] * B[row + k + 3];
      }
      for (; k < K; k++) s0 += a[k] * B[row + k];
      store(C, cOff + i * ldc + j, s0 + s1 + s2 + s3, alpha, beta);
    }
  }
}

export function gemmJs(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  aOff: number,
  lda: number,
  B: Float32Array,
  bOff: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  cOff: number,
  ldc: number,
): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) store(C, cOff + i * ldc + j, 0, alpha, beta);
    return;
  }
  if (transB && M <= 2) {
    gemmRowsDot(transA, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    return;
  }
  const PA = packOpA(transA, M, K, A, aOff, lda);
  const PB = packOpB(transB, N, K, B, bOff, ldb);
  const mp = Math.ceil(M / MR);
  const np = Math.ceil(N / NR);
  for (let p = 0; p < mp; p++) {
    const ab = p * MR * K;
    for (let q = 0; q < np; q++) {
      const bb = q * NR * K;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let k = 0; k < K; k++) {
        const ai = ab + k * MR;
        const bi = bb + k * NR;
        const a0 = PA[ai], a1 = PA[ai + 1], a2 = PA[ai + 2], a3 = PA[ai + 3];
        const b0 = PB[bi], b1 = PB[bi + 1], b2 = PB[bi + 2], b3 = PB[bi + 3];
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      }
      const tile = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
      const rows = Math.min(MR, M - p * MR);
      const cols = Math.min(NR, N - q * NR);
      for (let r = 0; r < rows; r++) {
        const base = cOff + (p * MR + r) * ldc + q * NR;
        for (let c = 0; c < cols; c++) store(C, base + c, tile[r * NR + c], alpha, beta);
      }
    }
  }
}
